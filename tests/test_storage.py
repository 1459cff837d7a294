"""Local buckets: names stay inside, writes are atomic, symlinks lead nowhere."""
from __future__ import annotations

import os

import pytest

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.storage import LocalBuckets


def test_write_creates_folders_and_returns_the_url(tmp_path):
    buckets = LocalBuckets(str(tmp_path))
    url = buckets.write("out", "a/b/c.jpg", b"jpeg")
    assert (tmp_path / "out" / "a" / "b" / "c.jpg").read_bytes() == b"jpeg"
    assert url == (tmp_path / "out" / "a" / "b" / "c.jpg").as_uri()
    assert os.listdir(tmp_path / "out" / "a" / "b") == ["c.jpg"]  # no temporary file left
    assert (tmp_path / "out" / "a" / "b" / "c.jpg").stat().st_mode & 0o777 == 0o644


def test_a_write_replaces_atomically(tmp_path, monkeypatch):
    buckets = LocalBuckets(str(tmp_path))
    buckets.write("out", "c.jpg", b"old")
    seen = []
    real_replace = os.replace

    def replace_and_look(src, dst):
        seen.append((open(dst, "rb").read(), os.path.basename(src).startswith(".tmp-")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_look)
    buckets.write("out", "c.jpg", b"new")
    assert seen == [(b"old", True)]  # the final name held the whole old file until the rename
    assert (tmp_path / "out" / "c.jpg").read_bytes() == b"new"


def test_missing_input_is_not_found(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(SnapshotError) as caught:
        LocalBuckets(str(tmp_path)).input_path("in", "nope.mp4")
    assert caught.value.code == errors.RESOURCE_NOT_FOUND
    with pytest.raises(SnapshotError) as caught:
        LocalBuckets(str(tmp_path)).input_path("nobucket", "nope.mp4")
    assert caught.value.code == errors.RESOURCE_NOT_FOUND


def test_symlinks_out_of_the_bucket_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"secret")
    bucket = tmp_path / "root" / "b"
    bucket.mkdir(parents=True)
    os.symlink(outside, bucket / "link")
    os.symlink(outside / "secret.mp4", bucket / "file.mp4")
    buckets = LocalBuckets(str(tmp_path / "root"))
    for call in (lambda: buckets.write("b", "link/x.jpg", b"x"),
                 lambda: buckets.write("b", "file.mp4", b"x"),
                 lambda: buckets.input_path("b", "link/secret.mp4"),
                 lambda: buckets.input_path("b", "file.mp4")):
        with pytest.raises(SnapshotError) as caught:
            call()
        assert caught.value.code == errors.PERMISSION_DENIED
    assert os.listdir(outside) == ["secret.mp4"]
    assert (outside / "secret.mp4").read_bytes() == b"secret"


def test_names_are_checked_before_any_io(tmp_path):
    buckets = LocalBuckets(str(tmp_path))
    for name in ("../x.jpg", "/x.jpg", "a/../../x.jpg"):
        with pytest.raises(SnapshotError) as caught:
            buckets.write("out", name, b"x")
        assert caught.value.code == errors.PERMISSION_DENIED
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == []
