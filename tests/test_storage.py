"""Local buckets and the bucket map: names stay inside, writes are atomic, symlinks lead nowhere."""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.spec import ObjectRef
from snapshot.storage import Buckets, Storage


def ref(bucket: str, name: str = "", role_arn: str = "") -> ObjectRef:
    return ObjectRef(bucket, "local", name, role_arn)


def read(buckets: Storage, bucket: str, name: str) -> bytes:
    with buckets.open(ref(bucket, name)) as reader:
        return reader.read()


def _read_at(dir_fd: int | None, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as stream:
        return stream.read()


def test_write_creates_folders_and_returns_the_url(tmp_path):
    buckets = Buckets(str(tmp_path)).connect()
    url = buckets.write(ref("out"), "a/b/c.jpg", b"jpeg")
    assert (tmp_path / "out" / "a" / "b" / "c.jpg").read_bytes() == b"jpeg"
    assert url == (tmp_path / "out" / "a" / "b" / "c.jpg").as_uri()
    assert os.listdir(tmp_path / "out" / "a" / "b") == ["c.jpg"]  # no temporary file left
    assert (tmp_path / "out" / "a" / "b" / "c.jpg").stat().st_mode & 0o777 == 0o644


def test_a_write_replaces_atomically(tmp_path, monkeypatch):
    buckets = Buckets(str(tmp_path)).connect()
    buckets.write(ref("out"), "c.jpg", b"old")
    seen = []
    real_replace = os.replace

    def replace_and_look(src, dst, src_dir_fd=None, dst_dir_fd=None):
        seen.append(
            (
                _read_at(dst_dir_fd, dst),
                os.path.basename(src).startswith(".tmp-"),
            )
        )
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", replace_and_look)
    buckets.write(ref("out"), "c.jpg", b"new")
    assert seen == [(b"old", True)]  # the final name held the whole old file until the rename
    assert (tmp_path / "out" / "c.jpg").read_bytes() == b"new"


def test_reads_are_counted(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "v.bin").write_bytes(bytes(range(256)) * 4)
    with Buckets(str(tmp_path)).connect().open(ref("in", "v.bin")) as reader:
        reader.seek(1000)
        assert reader.read(100) == bytes(range(232, 256))
        assert reader.bytes_read == 24


def test_missing_input_is_not_found(tmp_path):
    (tmp_path / "in").mkdir()
    for bucket in ("in", "nobucket"):
        with pytest.raises(SnapshotError) as caught:
            read(Buckets(str(tmp_path)).connect(), bucket, "nope.mp4")
        assert caught.value.code == errors.RESOURCE_NOT_FOUND


def test_symlinks_out_of_the_bucket_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"secret")
    bucket = tmp_path / "root" / "b"
    bucket.mkdir(parents=True)
    os.symlink(outside, bucket / "link")
    os.symlink(outside / "secret.mp4", bucket / "file.mp4")
    buckets = Buckets(str(tmp_path / "root")).connect()
    for call in (
        lambda: buckets.write(ref("b"), "link/x.jpg", b"x"),
        lambda: buckets.write(ref("b"), "file.mp4", b"x"),
        lambda: read(buckets, "b", "link/secret.mp4"),
        lambda: read(buckets, "b", "file.mp4"),
    ):
        with pytest.raises(SnapshotError) as caught:
            call()
        assert caught.value.code == errors.PERMISSION_DENIED
    assert os.listdir(outside) == ["secret.mp4"]
    assert (outside / "secret.mp4").read_bytes() == b"secret"


def test_names_are_checked_before_any_io(tmp_path):
    buckets = Buckets(str(tmp_path)).connect()
    for name in ("../x.jpg", "/x.jpg", "a/../../x.jpg"):
        with pytest.raises(SnapshotError) as caught:
            buckets.write(ref("out"), name, b"x")
        assert caught.value.code == errors.PERMISSION_DENIED
    with pytest.raises(SnapshotError) as caught:
        buckets.write(ref(".."), "x.jpg", b"x")
    assert caught.value.code == errors.INVALID_PARAMETER
    assert os.listdir(tmp_path) == []


def test_bucket_map_sends_buckets_to_their_roots(tmp_path):
    bucket_map = tmp_path / "map.json"
    bucket_map.write_text(json.dumps({"special": str(tmp_path / "elsewhere"), "*": str(tmp_path / "star")}))
    buckets = Buckets.from_files(str(tmp_path / "default"), str(bucket_map)).connect()
    buckets.write(ref("special"), "a.jpg", b"1")
    buckets.write(ref("other"), "b.jpg", b"2")
    assert (tmp_path / "elsewhere" / "a.jpg").read_bytes() == b"1"  # a mapped bucket is its root
    assert (tmp_path / "star" / "other" / "b.jpg").read_bytes() == b"2"  # "*" is a root of buckets
    assert (
        Buckets(str(tmp_path / "default")).connect().write(ref("plain"), "c.jpg", b"3").endswith("/default/plain/c.jpg")
    )


def test_unknown_roles(tmp_path):
    buckets = Buckets(str(tmp_path), roles={"acs:ram::1:role/known": {"key_file": "k.json"}})
    buckets.check_role("", "Input.RoleArn")
    buckets.check_role("acs:ram::1:role/known", "Input.RoleArn")
    with pytest.raises(SnapshotError) as caught:
        buckets.check_role("acs:ram::1:role/other", "Input.RoleArn")
    assert caught.value.code == errors.ENTITY_NOT_EXIST_ROLE and "Input.RoleArn" in caught.value.message


def test_a_symlink_swapped_in_during_writes_and_reads_never_leads_outside(tmp_path):
    """A thread swaps folder `d` of the bucket for a link to a folder outside, back and forth,
    while objects below `d` are written and read: nothing lands outside, nothing outside is read."""
    import threading

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"secret")
    bucket = tmp_path / "root" / "b"
    (bucket / "d").mkdir(parents=True)
    (bucket / "d" / "x.jpg").write_bytes(b"inside")
    buckets, stop = Buckets(str(tmp_path / "root")).connect(), threading.Event()

    os.symlink(outside, bucket / "link")

    def swap():
        while not stop.is_set():
            for source, target in (("d", "real"), ("link", "d"), ("d", "link"), ("real", "d")):
                with contextlib.suppress(OSError):  # a write may have made `d` meanwhile
                    os.rename(bucket / source, bucket / target)

    swapper = threading.Thread(target=swap)
    swapper.start()
    read_back, refused = set(), 0
    try:
        for n in range(1000):
            try:
                if n % 2:
                    buckets.write(ref("b"), "d/x.jpg", b"inside")
                else:
                    with buckets.open(ref("b", "d/x.jpg")) as reader:
                        read_back.add(reader.read())
            except SnapshotError as error:
                assert error.code in (
                    errors.PERMISSION_DENIED,
                    errors.RESOURCE_NOT_FOUND,
                    errors.INVALID_PARAMETER,
                    errors.INTERNAL_ERROR,
                )
                refused += 1
    finally:
        stop.set()
        swapper.join()
    assert [p.name for p in outside.rglob("*")] == ["x.jpg"] and (outside / "x.jpg").read_bytes() == b"secret"
    assert read_back <= {b"inside"} and read_back and refused  # the race was really run


def test_a_symlink_swapped_in_between_check_and_write_changes_nothing_outside(tmp_path, monkeypatch):
    """The swap happens at the worst moment: right before the temporary file is created."""
    outside = tmp_path / "outside"
    outside.mkdir()
    bucket = tmp_path / "root" / "b"
    (bucket / "d").mkdir(parents=True)
    real_open = os.open

    def swap_then_open(path, flags, *args, **kwargs):
        if ".tmp-" in os.fspath(path) and not (bucket / "real").exists():
            os.rename(bucket / "d", bucket / "real")
            os.symlink(outside, bucket / "d")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swap_then_open)
    with contextlib.suppress(SnapshotError):
        Buckets(str(tmp_path / "root")).connect().write(ref("b"), "d/x.jpg", b"x")
    assert list(outside.iterdir()) == []
    assert (bucket / "real" / "x.jpg").read_bytes() == b"x"  # it went where the check said


def test_a_bucket_that_is_no_folder_is_named_in_place_of_its_object(tmp_path):
    (tmp_path / "root" / "media").mkdir(parents=True)
    buckets = Buckets(str(tmp_path / "root"), {"mapped": str(tmp_path / "gone"), "remote": "gs://b"})
    with pytest.raises(SnapshotError) as raised:
        read(buckets.connect(), "medai", "videos/a.mp4")
    assert (raised.value.code, raised.value.message) == (
        errors.RESOURCE_NOT_FOUND,
        "bucket 'medai' is not a folder of the bucket root",
    )
    assert buckets.missing("medai") == f"bucket 'medai' is not a folder under {tmp_path / 'root'}"
    with pytest.raises(SnapshotError) as raised:
        read(buckets.connect(), "media", "videos/a.mp4")  # the bucket is there: the object is not
    assert raised.value.message == "object 'videos/a.mp4' not found"
    assert buckets.missing("mapped") == f"bucket 'mapped' is mapped to {tmp_path / 'gone'}, which is not a folder"
    assert [buckets.missing(b) for b in ("media", "remote", "bad name")] == [None, None, None]
    assert Buckets("gs://b").any_local() is False and buckets.any_local() is True
    assert Buckets(str(tmp_path), {"*": "gs://", "b": "gs://b"}).any_local() is False
