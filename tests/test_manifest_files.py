"""Manifest files as a glob finds them: named the same whatever the glob's form, and read
whether plain, gzip or bzip2, in the pipeline (`ReadManifest`) and in the accounting after it
(`manifest_sources`) alike."""

from __future__ import annotations

import bz2
import gzip

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline import __main__ as command
from pipeline.accounting import json_array, manifest_lines
from snapshot.jobs import ManifestLine
from transforms.manifest import ReadManifest

LINE = '{"Input": {"Object": "v.mp4"}}'
RELATIVE_GLOBS = ["in/*/jobs.jsonl", "./in/*/jobs.jsonl", "in/../in/*/jobs.jsonl"]


def make_pipeline():
    return BeamTestPipeline(runner="FnApiRunner")


@pytest.fixture
def two_folders(tmp_path, monkeypatch):
    """in/a/jobs.jsonl and in/b/jobs.jsonl, of the same lines, below the working folder."""
    for name in "ab":
        (tmp_path / "in" / name).mkdir(parents=True)
        (tmp_path / "in" / name / "jobs.jsonl").write_text(f"{LINE}\n\n{LINE}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def expected_lines() -> list[ManifestLine]:
    """Lines 1 and 3 of each file, the first and second occurrence of the same text."""
    return [
        ManifestLine(source, number, LINE, occurrence=occurrence)
        for source in ("a/jobs.jsonl", "b/jobs.jsonl")
        for number, occurrence in ((1, 1), (3, 2))
    ]


@pytest.mark.parametrize("glob", RELATIVE_GLOBS)
def test_a_relative_glob_names_files_as_the_absolute_glob_does(two_folders, glob):
    with make_pipeline() as p:
        relative = p | "Relative" >> ReadManifest(glob)
        absolute = p | "Absolute" >> ReadManifest(str(two_folders / "in" / "*" / "jobs.jsonl"))
        assert_that(relative, equal_to(expected_lines()), label="RelativeLines")
        assert_that(absolute, equal_to(expected_lines()), label="AbsoluteLines")


@pytest.mark.parametrize("glob", RELATIVE_GLOBS)
def test_manifest_sources_of_a_relative_glob_agree_with_read_manifest(two_folders, glob):
    expected = sorted(f"{line.source}:{line.number}" for line in expected_lines())
    assert sorted(manifest_sources(glob)) == expected
    assert sorted(manifest_sources(str(two_folders / "in" / "*" / "jobs.jsonl"))) == expected
    assert sorted(manifest_sources(str(two_folders / "in" / ".." / "in" / "*" / "jobs.jsonl"))) == expected
    # a plain path, relative or absolute, is named by its file name
    for plain in ("in/a/jobs.jsonl", "./in/b/../a/jobs.jsonl", str(two_folders / "in" / "a" / "jobs.jsonl")):
        assert manifest_sources(plain) == ["jobs.jsonl:1", "jobs.jsonl:3"]


def test_same_lines_of_two_relative_files_get_different_job_ids(two_folders):
    expected = [line.job_id for line in expected_lines()]
    assert len(set(expected)) == 4

    def all_distinct(ids):
        assert len(set(ids)) == len(ids) == 4, ids

    with make_pipeline() as p:
        ids = p | ReadManifest("in/*/jobs.jsonl") | beam.Map(lambda line: line.job_id)
        assert_that(ids, equal_to(expected), label="Ids")
        assert_that(ids, all_distinct, label="Distinct")


COMPRESSED = [
    ("m1.jsonl", 1, '{"plain": 1}'),
    ("m1.jsonl", 2, '{"plain": 2}'),
    ("m2.jsonl.gz", 1, '{"gzip": 1}'),
    ("m2.jsonl.gz", 3, '{"gzip": 3}'),
    ("m2.jsonl.gz", 4, '{"gzip": 4}'),
    ("m3.jsonl.bz2", 1, '{"bzip2": 1}'),
    ("m3.jsonl.bz2", 2, "\ufffd not utf-8"),
    ("m3.jsonl.bz2", 3, '{"bzip2": 3}'),
]


@pytest.fixture
def compressed(tmp_path):
    """m1.jsonl, m2.jsonl.gz (a BOM, a blank line, two gzip members) and m3.jsonl.bz2 (a line
    that is not UTF-8, no newline at the end); the glob naming them."""
    (tmp_path / "m1.jsonl").write_bytes(b'{"plain": 1}\n{"plain": 2}\n')
    (tmp_path / "m2.jsonl.gz").write_bytes(
        gzip.compress(b'\xef\xbb\xbf{"gzip": 1}\n  \n{"gzip": 3}\n') + gzip.compress(b'{"gzip": 4}\n')
    )
    (tmp_path / "m3.jsonl.bz2").write_bytes(bz2.compress(b'{"bzip2": 1}\n\xff not utf-8\n{"bzip2": 3}'))
    return str(tmp_path / "m*")


def test_read_manifest_reads_compressed_manifests(compressed):
    with make_pipeline() as p:
        lines = p | ReadManifest(compressed)
        assert_that(
            lines | beam.Map(lambda line: (line.source, line.number, line.text)), equal_to(COMPRESSED), label="Lines"
        )
        assert_that(
            lines | "Utf8" >> beam.Map(lambda line: (line.source, line.number, line.utf8)),
            equal_to([(source, number, "\ufffd" not in text) for source, number, text in COMPRESSED]),
            label="Utf8Flags",
        )


def test_manifest_sources_reads_compressed_manifests(compressed):
    assert sorted(manifest_sources(compressed)) == sorted(f"{source}:{number}" for source, number, _ in COMPRESSED)


def manifest_sources(pattern: str) -> list[str]:
    """`file:line` of every line the command's check reads, as the results name them."""
    return [f"{line.source}:{line.number}" for line in manifest_lines(pattern)]


@pytest.mark.parametrize("opener", [open, gzip.open, bz2.open])
@pytest.mark.parametrize("text", [f"[\n  {LINE},\n  {LINE}\n]\n", f"\n  [{LINE}, {LINE}]\n"])
def test_a_json_array_manifest_is_refused_before_the_run(tmp_path, capfd, opener, text):
    suffix = {open: "", gzip.open: ".gz", bz2.open: ".bz2"}[opener]
    path = tmp_path / f"m.json{suffix}"
    with opener(path, "wt") as out:
        out.write(text)
    (tmp_path / "buckets").mkdir()
    argv = ["--manifest", str(path), "--results", str(tmp_path / "r"), "--bucket_root", str(tmp_path / "buckets")]
    assert command.main(argv) == 2
    assert capfd.readouterr().err == (
        f"error: {path} is a JSON array; the manifest is JSON Lines: one request object per line\n"
    )
    assert json_array(str(tmp_path / "*.json*")) == str(path)
    path.unlink()
    (tmp_path / "m.jsonl").write_text(f"\n{LINE}\n")
    assert json_array(str(tmp_path / "*.json*")) is None
