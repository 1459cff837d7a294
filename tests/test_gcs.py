"""gs:// buckets against a real GCS API server (gcp-storage-emulator) on 127.0.0.1, with a
fault-injecting proxy in front of it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from PIL import Image

from pipeline import graph, runs
from pipeline.show import read_results
from snapshot import assemble, errors, guarded, jobs, synth, tasks
from snapshot.gcs import APPEND_TAG, GcsRoot, Versioned
from snapshot.jobs import ManifestLine
from snapshot.objects import Retry
from snapshot.storage import Buckets
from tests.helpers import ROOT

from .gcs_servers import Emulator, FaultProxy, TokenServer, service_account_key

pytestmark = pytest.mark.slow  # a GCS emulator behind a fault-injecting proxy


FAST_RETRY = Retry(attempts=4, initial_s=0.01, maximum_s=0.05, timeout_s=5)


@pytest.fixture(scope="module")
def emulator():
    server = Emulator()
    yield server
    server.stop()


class Gcs:
    """Test buckets on the emulator, set up directly; the code under test goes through the proxy."""

    def __init__(self, emulator: Emulator, proxy: FaultProxy):
        self.proxy = proxy
        self.client = storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator.url}
        )

    def bucket(self, stem: str) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        self.client.create_bucket(name)
        return name

    def upload(self, bucket: str, name: str, path: str) -> None:
        self.client.bucket(bucket).blob(name).upload_from_filename(path)

    def download(self, bucket: str, name: str) -> bytes:
        return self.client.bucket(bucket).blob(name).download_as_bytes()

    def index_of(self, bucket: str, name: str) -> tuple[int, tuple[int, int]]:
        image = Image.open(io.BytesIO(self.download(bucket, name)))
        return synth.read_index(image), image.size


@pytest.fixture(scope="module")
def default_credentials(tmp_path_factory):
    """Application default credentials whose tokens come from a local token server. Without any,
    Beam's gs:// filesystem spends half a minute looking before it goes on anonymously."""
    tokens = TokenServer("default-token")
    key = tmp_path_factory.mktemp("adc") / "key.json"
    service_account_key(str(key), tokens.url)
    yield str(key)
    tokens.stop()


@pytest.fixture
def gcs(emulator, default_credentials, monkeypatch):
    proxy = FaultProxy(emulator.port)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", default_credentials)
    yield Gcs(emulator, proxy)
    proxy.stop()


def line(bucket: str, obj: str, out: str, output="{Count}.jpg", role="", **config) -> str:
    config = {"OutputFile": {"Bucket": out, "Location": "oss-cn-hangzhou", "Object": output}, **config}
    source = {"Bucket": bucket, "Location": "oss-cn-hangzhou", "Object": obj}
    if role:
        source["RoleArn"] = role
    return json.dumps({"Input": source, "SnapshotConfig": config})


def run_job(text: str, buckets: Buckets):
    return assemble.run(jobs.read_job(ManifestLine("m.jsonl", 1, text), "now"), buckets)


def gcs_buckets(**kwargs) -> Buckets:
    return Buckets("./unused", {"*": "gs://"}, retry=kwargs.pop("retry", FAST_RETRY), **kwargs)


def test_a_whole_manifest_on_gcs(gcs, videos, tmp_path):
    media, out, ops = gcs.bucket("media"), gcs.bucket("out"), gcs.bucket("ops")
    gcs.upload(media, "v/h264.mp4", videos("h264.mp4"))
    gcs.upload(media, "v/phone.mp4", videos("phone.mp4"))
    manifest = [
        line(
            media,
            "v/h264.mp4",
            out,
            output="{FileName}/{Count}.jpg",
            FrameType="normal",
            TimeArray={"TimePointList": [1010, 2017]},
        ),
        line(media, "v/phone.mp4", out, output="phone.jpg", Time=1010, FrameType="normal", Width=90),
        line(media, "v/missing.mp4", out, Time=0),
        line(f"nobucket-{uuid.uuid4().hex[:8]}", "v/h264.mp4", out, Time=0),
        line(
            media,
            "v/h264.mp4",
            out,
            output="s/{Count}.jpg",
            Time=0,
            Num=3,
            Interval=1,
            FrameType="normal",
            TileOut={"Lines": 1, "Columns": 3, "CellWidth": 64},
            TileOutputFile={"Bucket": out, "Location": "x", "Object": "s/sheet.jpg"},
            Format="vtt",
        ),
    ]
    gcs.client.bucket(ops).blob("jobs/part-1.jsonl").upload_from_string("\n".join(manifest[:3]) + "\n")
    gcs.client.bucket(ops).blob("jobs/part-2.jsonl").upload_from_string("\n".join(manifest[3:]) + "\n")
    bucket_map = tmp_path / "map.json"
    bucket_map.write_text(json.dumps({"*": "gs://"}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--manifest",
            f"gs://{ops}/jobs/*.jsonl",
            "--results",
            f"gs://{ops}/results/run",
            "--bucket_map",
            str(bucket_map),
            "--bucket_root",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 3, done.stderr  # two jobs failed
    found = {r["Source"]: r for r in read_results(f"gs://{ops}/results/run")}
    assert [(s, found[s]["State"], found[s]["Code"], found[s]["Count"]) for s in sorted(found)] == [
        ("part-1.jsonl:1", "Success", "", 2),
        ("part-1.jsonl:2", "Success", "", 1),
        ("part-1.jsonl:3", "Fail", errors.RESOURCE_NOT_FOUND, 0),
        ("part-2.jsonl:1", "Fail", errors.RESOURCE_NOT_FOUND, 0),
        ("part-2.jsonl:2", "Success", "", 3),
    ]
    assert gcs.index_of(out, "h264/00001.jpg") == (30, (320, 180))
    assert gcs.index_of(out, "h264/00002.jpg") == (60, (320, 180))
    assert gcs.index_of(out, "phone.jpg") == (30, (90, 160))
    assert found["part-1.jsonl:1"]["Snapshots"][0]["Url"] == f"gs://{out}/h264/00001.jpg"
    assert found["part-2.jsonl:2"]["Tiles"] == [f"gs://{out}/s/sheet.jpg"]
    sheet = Image.open(io.BytesIO(gcs.download(out, "s/sheet.jpg")))
    assert [synth.read_index(sheet.crop((64 * k, 0, 64 * k + 64, 36))) for k in range(3)] == [0, 30, 60]
    assert gcs.download(out, "s/00001.vtt").startswith(b"WEBVTT")
    assert all(r["BytesRead"] > 0 for s, r in found.items() if r["State"] == "Success")


def test_ranged_reads_fetch_a_small_part_and_are_counted(gcs, videos, tmp_path):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "grain.mp4", videos("grain.mp4"))
    size = os.path.getsize(videos("grain.mp4"))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(line(media, "grain.mp4", out, TimeArray={"TimePointList": [2000, 5000, 8000]}) + "\n")
    p = BeamTestPipeline(runner="FnApiRunner")
    graph.build(p, str(manifest), str(tmp_path / "res"), gcs_buckets())
    outcome = p.run()
    outcome.wait_until_finish()
    (record,) = read_results(str(tmp_path / "res"))
    assert record["State"] == "Success" and record["Count"] == 3
    assert [gcs.index_of(out, f"0000{n}.jpg")[0] for n in (1, 2, 3)] == [60, 150, 240]
    assert 0 < record["BytesRead"] < size * 0.35
    counters = outcome.metrics().query(MetricsFilter().with_name("input_bytes_read"))["counters"]
    assert sum(c.committed for c in counters) == record["BytesRead"]
    ranged = [s for s in gcs.proxy.seen if "alt=media" in s.path]
    assert len(ranged) >= 4 and {s.method for s in ranged} == {"GET"}


def test_transient_failures_are_retried(gcs, videos):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    tries = Counter()

    def flaky(method, path):
        key = (method, path.split("?")[0])
        tries[key] += 1
        return {1: 503, 2: "drop", 3: 429}.get(tries[key], "pass")

    gcs.proxy.rule = flaky
    result = run_job(line(media, "v.mp4", out, Time=1010, FrameType="normal"), gcs_buckets())
    assert (result.state, result.code) == ("Success", ""), result.message
    assert gcs.index_of(out, "00001.jpg")[0] == 30
    answers = Counter(s.answer for s in gcs.proxy.seen)
    assert answers["503"] >= 3 and answers["drop"] >= 3 and answers["429"] >= 3


def test_each_ranged_read_gets_the_whole_retry_budget(gcs, videos):
    """Every ranged GET fails once before it succeeds: more failures in all than the attempts
    of one request, which must not add up across the reads of one input."""
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "grain.mp4", videos("grain.mp4"))
    gets = Counter()

    def every_read_fails_once(method, path):
        if "alt=media" not in path:
            return "pass"
        gets["all"] += 1
        return 503 if gets["all"] % 2 else "pass"

    gcs.proxy.rule = every_read_fails_once
    text = line(media, "grain.mp4", out, TimeArray={"TimePointList": [2000, 5000, 8000]}, FrameType="normal")
    result = run_job(text, gcs_buckets())
    assert (result.state, result.code) == ("Success", ""), result.message
    assert gets["all"] // 2 > FAST_RETRY.attempts
    assert [gcs.index_of(out, f"0000{n}.jpg")[0] for n in (1, 2, 3)] == [60, 150, 240]


def test_a_stalled_request_times_out_and_is_retried(gcs, videos):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    stalled = set()

    def stall_once(method, path):
        if path.split("?")[0] in stalled:
            return "pass"
        stalled.add(path.split("?")[0])
        return "stall"

    gcs.proxy.rule, gcs.proxy.stall_seconds = stall_once, 2.0
    result = run_job(line(media, "v.mp4", out, Time=0), gcs_buckets(retry=Retry(3, 0.01, 0.05, timeout_s=0.5)))
    assert result.state == "Success", result.message
    assert Counter(s.answer for s in gcs.proxy.seen)["stall"] >= 2


def test_storage_that_keeps_failing_gives_transient_network_error_and_spares_the_others(gcs, videos, tmp_path):
    media, flaky, out = gcs.bucket("media"), gcs.bucket("flaky"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    gcs.upload(flaky, "v.mp4", videos("h264.mp4"))
    gcs.proxy.rule = lambda method, path: 503 if f"/b/{flaky}/" in path or f"/b/{flaky}?" in path else "pass"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        line(flaky, "v.mp4", out, output="a.jpg", Time=0)
        + "\n"
        + line(media, "v.mp4", out, output="b.jpg", Time=1010, FrameType="normal")
        + "\n"
    )
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(manifest), str(tmp_path / "res"), gcs_buckets())
    found = {r["Source"]: r for r in read_results(str(tmp_path / "res"))}
    assert (found["m.jsonl:1"]["State"], found["m.jsonl:1"]["Code"]) == ("Fail", errors.TRANSIENT_NETWORK_ERROR)
    assert "after 4 attempts" in found["m.jsonl:1"]["Message"]
    assert (found["m.jsonl:2"]["State"], gcs.index_of(out, "b.jpg")[0]) == ("Success", 30)


def test_forbidden_access_is_permission_denied(gcs, videos):
    private, out = gcs.bucket("private"), gcs.bucket("out")
    gcs.upload(private, "v.mp4", videos("h264.mp4"))
    gcs.proxy.rule = lambda method, path: 403 if f"/b/{private}/" in path else "pass"
    result = run_job(line(private, "v.mp4", out, Time=0), gcs_buckets())
    assert (result.state, result.code) == ("Fail", errors.PERMISSION_DENIED)
    media = gcs.bucket("media")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    result = run_job(line(media, "v.mp4", private, Time=0), gcs_buckets())  # a refused write
    assert (result.state, result.code) == ("Fail", errors.PERMISSION_DENIED)


def test_role_arn_selects_the_credentials_of_its_role(gcs, videos, tmp_path):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    tokens = TokenServer("token-of-the-reader-role")
    try:
        service_account_key(str(tmp_path / "key.json"), tokens.url)
        roles = {"acs:ram::1:role/reader": {"key_file": str(tmp_path / "key.json")}}
        buckets = gcs_buckets(roles=roles)
        result = run_job(line(media, "v.mp4", out, role="acs:ram::1:role/reader", Time=0), buckets)
        assert result.state == "Success", result.message
        reads = [s for s in gcs.proxy.seen if f"/b/{media}/" in s.path]
        writes = [s for s in gcs.proxy.seen if f"/b/{out}/" in s.path]
        assert reads and {s.authorization for s in reads} == {"Bearer token-of-the-reader-role"}
        assert writes and {s.authorization for s in writes} == {""}  # the output has no role: default
        unknown = run_job(line(media, "v.mp4", out, role="acs:ram::1:role/other", Time=0), buckets)
        assert (unknown.state, unknown.code) == ("Fail", errors.ENTITY_NOT_EXIST_ROLE)
    finally:
        tokens.stop()


def test_writes_are_single_uploads_and_reruns_rewrite_the_same_bytes(gcs, videos):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("h264.mp4"))
    text = line(media, "v.mp4", out, Time=0, Num=3, Interval=1, FrameType="normal")
    first = run_job(text, gcs_buckets())
    images = [gcs.download(out, f"0000{n}.jpg") for n in (1, 2, 3)]
    uploads = [s for s in gcs.proxy.seen if s.method in ("POST", "PUT") and f"/b/{out}/" in s.path]
    assert len(uploads) == 3  # one request per object: nobody sees a partial object
    second = run_job(text, gcs_buckets())
    assert [gcs.download(out, f"0000{n}.jpg") for n in (1, 2, 3)] == images
    assert first.to_record()["Snapshots"] == second.to_record()["Snapshots"]
    assert FileSystems.match([f"gs://{out}/*"])[0].metadata_list.__len__() == 3


def test_an_input_replaced_after_planning_is_caught_by_its_generation(gcs, videos):
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v.mp4", videos("long_gop.mp4"))
    buckets = gcs_buckets()
    job = jobs.read_job(ManifestLine("m", 1, line(media, "v.mp4", out, Time=9000, FrameType="normal")), "now")
    _, (task,) = tasks.plan_input([job], buckets)
    assert task.input_version.isdigit()
    gcs.upload(media, "v.mp4", videos("h264.mp4"))  # a 3 s video in its place: a new generation
    ((_, outcome),) = guarded.run_task_guarded(task, buckets, assemble.Limits(isolate=False))
    assert (outcome.error.code, outcome.error.message) == (
        errors.RESOURCE_CONTENT_BAD,
        "the input changed during the job",
    )
    assert not list(gcs.client.bucket(out).list_blobs())


@pytest.mark.parametrize(
    "bucket", ["Media", "_media", "media_", "goog-media", "my-google-media", "192.168.5.4", "ab", "m" * 64, "a..b"]
)
def test_names_that_gcs_refuses_are_refused_before_any_request(gcs, bucket):
    for text in (line(bucket, "v.mp4", "out-bucket", Time=0), line("in-bucket", "v.mp4", bucket, Time=0)):
        result = run_job(text, gcs_buckets())
        assert (result.state, result.code) == ("Fail", errors.INVALID_PARAMETER), result.message
    long_prefix = Buckets("./unused", {"*": "gs://in-bucket/" + "p" * 1000}, retry=FAST_RETRY)
    result = run_job(line("media", "v" * 30 + ".mp4", "out", Time=0), long_prefix)
    assert (result.state, result.code) == ("Fail", errors.INVALID_PARAMETER) and "1024 bytes" in result.message
    assert gcs.proxy.seen == []


def conditional_root(bucket: str) -> GcsRoot:
    return GcsRoot(f"gs://{bucket}/some/prefix", None, FAST_RETRY)


def test_conditional_writes_and_deletes_hold_only_on_the_live_generation(gcs):
    bucket = gcs.bucket("lease")
    root = conditional_root(bucket)
    assert root.read_versioned("lease.json") is None
    first = root.write_if("lease.json", b"one", 0)
    assert first and gcs.download(bucket, "some/prefix/lease.json") == b"one"
    assert root.write_if("lease.json", b"two", 0) is None
    assert root.read_versioned("lease.json") == Versioned(b"one", first, {})
    second = root.write_if("lease.json", b"three", first, {"holder": "run-1"})
    assert second and second != first
    assert root.read_versioned("lease.json") == Versioned(b"three", second, {"holder": "run-1"})
    assert root.write_if("lease.json", b"four", first) is None
    assert not root.delete_if("lease.json", first)
    assert root.read_versioned("lease.json") == Versioned(b"three", second, {"holder": "run-1"})
    assert root.delete_if("lease.json", second)
    assert root.read_versioned("lease.json") is None
    assert not root.delete_if("lease.json")
    # each refusal was one request: a failed precondition is not retried
    assert Counter(s.method for s in gcs.proxy.seen if s.answer == "412") == {"POST": 2, "DELETE": 1}


def test_racing_conditional_creates_have_exactly_one_winner(gcs):
    bucket = gcs.bucket("race")
    roots = [conditional_root(bucket), conditional_root(bucket)]
    for n in range(20):
        name = f"lease-{n}.json"
        start = threading.Barrier(2)
        won: dict[int, int | None] = {}

        def create(me: int, name=name, start=start, won=won) -> None:
            start.wait()
            won[me] = roots[me].write_if(name, f"thread-{me}".encode(), 0)

        threads = [threading.Thread(target=create, args=(me,)) for me in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [me for me, generation in won.items() if generation is not None]
        assert len(winners) == 1, won
        assert roots[0].read_versioned(name) == Versioned(f"thread-{winners[0]}".encode(), won[winners[0]], {})


def test_append_composes_the_live_generation_with_the_new_bytes_and_leaves_no_part(gcs):
    bucket = gcs.bucket("append")
    root = conditional_root(bucket)
    first = root.append("notes.jsonl", b"a\n", "tag-1", 0)
    assert root.read_versioned("notes.jsonl") == Versioned(b"a\n", first, {APPEND_TAG: "tag-1"})
    assert root.append("notes.jsonl", b"x\n", "tag-x", 0) is None
    second = root.append("notes.jsonl", b"b\n", "tag-2", first)
    assert second and second != first
    assert root.read_versioned("notes.jsonl") == Versioned(b"a\nb\n", second, {APPEND_TAG: "tag-2"})
    assert root.append("notes.jsonl", b"c\n", "tag-3", first) is None  # a stale generation
    assert root.append("gone.jsonl", b"c\n", "tag-4", second) is None  # no live generation at all
    assert root.read_versioned("notes.jsonl") == Versioned(b"a\nb\n", second, {APPEND_TAG: "tag-2"})
    assert gcs.download(bucket, "some/prefix/notes.jsonl") == b"a\nb\n"
    composes = [s for s in gcs.proxy.seen if s.path.split("?")[0].endswith("/compose")]
    assert [s.answer for s in composes] == ["pass", "412", "412"]
    assert [blob.name for blob in gcs.client.bucket(bucket).list_blobs()] == ["some/prefix/notes.jsonl"]
    deletes = [s for s in gcs.proxy.seen if s.method == "DELETE"]
    assert len(deletes) == 3 and all(".append-" in s.path for s in deletes)


def test_a_gcs_lease_is_held_renewed_taken_over_when_stale_and_lost_when_taken(gcs, monkeypatch):
    monkeypatch.setattr(runs, "HEARTBEAT_S", 0.2)
    prefix = f"gs://{gcs.bucket('ops')}/res/run"
    first = runs.Lease.take(prefix, "run-1")
    with pytest.raises(runs.Held, match=r"is held by run run-1 \(pid \d+ on "):
        runs.Lease.take(prefix, "run-2")
    root = GcsRoot(f"{prefix}.runs", None, FAST_RETRY)
    before = json.loads(root.read_versioned("lease").data)["heartbeat"]
    time.sleep(0.6)
    assert json.loads(root.read_versioned("lease").data)["heartbeat"] > before  # renewed
    first.check()

    # a holder on another host that has not renewed for STALE_S: taken over, with its name
    elsewhere = {"run": "run-0", "host": "elsewhere", "pid": 1, "started": 0, "heartbeat": time.time() - 121}
    while not root.write_if("lease", json.dumps(elsewhere).encode(), root.read_versioned("lease").generation):
        pass  # the first run's heartbeat came between
    second = runs.Lease.take(prefix, "run-2")
    assert second.taken_over == elsewhere
    with pytest.raises(runs.LeaseLost):  # at once, not at the next heartbeat: asked of the object
        first.check()
    first.release()
    assert json.loads(root.read_versioned("lease").data)["run"] == "run-2"  # not released by the first
    second.release()
    assert root.read_versioned("lease") is None


def test_a_local_manifest_with_gcs_buckets(gcs, videos, tmp_path):
    """No gs:// flag: the command imports Beam without its GCS file system (pipeline.startup),
    and the buckets of a --bucket_map still go to GCS, through snapshot.gcs."""
    media, out = gcs.bucket("media"), gcs.bucket("out")
    gcs.upload(media, "v/h264.mp4", videos("h264.mp4"))
    (tmp_path / "m.jsonl").write_text(line(media, "v/h264.mp4", out, Time=1010, FrameType="normal") + "\n")
    (tmp_path / "map.json").write_text(json.dumps({"*": "gs://"}))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--manifest", str(tmp_path / "m.jsonl"), "--results"]
        + [str(tmp_path / "r" / "run"), "--bucket_map", str(tmp_path / "map.json"), "--bucket_root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert gcs.index_of(out, "00001.jpg") == (30, (320, 180))
    assert [r["State"] for r in read_results(str(tmp_path / "r" / "run"))] == ["Success"]
