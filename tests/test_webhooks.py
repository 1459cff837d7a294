"""Notification targets that redirect, drip, flood, stall or hang never sink or stall a run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipeline import graph
from pipeline.show import read_results
from snapshot import notify, results
from snapshot.notify import Sender
from snapshot.results import JobResult
from snapshot.storage import Buckets
from snapshot.targets import Delivery, Targets
from tests.helpers import ROOT, request_line, submit

from .webhook_servers import Target

pytestmark = pytest.mark.slow  # real HTTP servers that misbehave

QUICK = Delivery(attempts=2, initial_s=0.05, timeout_s=1.0)


def result(n: int = 1) -> JobResult:
    return JobResult(f"job{n:04d}", f"m:{n}", results.State.SUCCESS, "now", "now", pipeline_id="p", user_data="u")


@pytest.fixture
def target(request):
    made = Target(request.param)
    yield made
    made.stop()


def send(target: Target, delivery: Delivery = QUICK) -> tuple[dict, float]:
    started = time.monotonic()
    (outcome,) = Sender(delivery).deliver(target.url, [result().to_record()])
    return outcome, time.monotonic() - started


@pytest.mark.parametrize(
    "target",
    [
        ("redirect", 302, "/elsewhere"),
        ("redirect", 301, "/elsewhere"),
        ("redirect", 303, "/elsewhere"),
        ("redirect", 307, "/elsewhere"),
        ("redirect", 302, "http://[bad/x"),
    ],
    indirect=True,
)
def test_a_redirect_is_a_failure_with_its_status_and_never_followed(target):
    outcome, _ = send(target)
    status = target.behaviour[1]
    assert (outcome["MessageId"], outcome["ErrorCode"]) == (None, "HttpError")
    assert f"HTTP {status}" in outcome["ErrorMessage"] and "redirect" in outcome["ErrorMessage"]
    assert [path for path, _, _, _ in target.received] == ["/hook"]  # not followed, not retried


@pytest.mark.parametrize("target", ["drip", "hang"], indirect=True)
def test_an_attempt_is_bounded_as_a_whole(target):
    outcome, took = send(target, Delivery(attempts=2, initial_s=0.05, timeout_s=1.0))
    assert (outcome["MessageId"], outcome["ErrorCode"]) == (None, "Timeout")
    assert took < 2 * 1.0 + 0.05 + 1.0  # two attempts, one pause, and slack
    assert len(target.received) == 2


@pytest.mark.parametrize("target", ["huge", "gzip-bomb", "stall", 200, 204], indirect=True)
def test_a_2xx_status_line_is_delivery_whatever_follows(target):
    outcome, took = send(target)
    assert outcome["MessageId"] == notify.message_id(result().to_record()) and took < 1.0
    assert len(target.received) == 1  # delivered once: no duplicate
    if target.behaviour == "huge":
        assert target.bytes_sent < 1 << 28  # the body was never read whole


@pytest.mark.parametrize("target", [404, 500], indirect=True)
def test_errors_are_retried_only_when_asking_again_can_help(target):
    outcome, _ = send(target)
    assert outcome["ErrorCode"] == "HttpError"
    assert len(target.received) == (1 if target.behaviour == 404 else 2)


def test_an_invalid_url_fails_at_once():
    for url in ("http://[bad/x", "http://127.0.0.1:99999/x", "http:///nohost"):
        started = time.monotonic()
        (outcome,) = Sender(QUICK).deliver(url, [result().to_record()])
        assert outcome["ErrorCode"] == "InvalidURL" and time.monotonic() - started < 0.5


@pytest.mark.parametrize("target", ["hang"], indirect=True)
def test_a_dead_target_costs_a_run_a_few_attempts_not_one_per_job(target, caplog):
    records = [result(n).to_record() for n in range(200)]
    delivery = Delivery(attempts=2, initial_s=0.05, timeout_s=1.0)
    started = time.monotonic()
    outcomes = Sender(delivery).deliver(target.url, records)
    took = time.monotonic() - started
    assert took < 3 * (delivery.attempts * delivery.timeout_s + delivery.initial_s), took
    assert all(o["ErrorCode"] for o in outcomes)
    tried = delivery.concurrency + delivery.down_after  # at most: those in flight when it went down
    assert sum("target down" in o["ErrorMessage"] for o in outcomes) >= 200 - tried
    assert len(target.received) <= delivery.attempts * tried


def test_log_lines_never_show_credentials(caplog):
    url = "http://user:s3cret@127.0.0.1:1/hook?token=abc"
    with caplog.at_level(logging.WARNING):
        (outcome,) = Sender(QUICK).deliver(url, [result().to_record()])
    assert outcome["ErrorCode"] == "ConnectionError"
    assert "127.0.0.1:1/hook" in caplog.text and "s3cret" not in caplog.text and "abc" not in caplog.text


@pytest.mark.parametrize("target", [200], indirect=True)
def test_credentials_in_the_url_go_as_basic_auth(target):
    user_url = target.url.replace("http://", "http://me:pw@") + "?q=1"
    (outcome,) = Sender(QUICK).deliver(user_url, [result().to_record()])
    assert outcome["MessageId"]
    path, method, body, headers = target.received[0]
    assert (path, method, headers["authorization"]) == ("/hook?q=1", "POST", "Basic bWU6cHc=")
    assert json.loads(body)["JobId"] == "job0001"


def test_a_gcs_target_without_credentials_fails_its_messages_not_the_run(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    outcomes = Sender(QUICK).deliver("gs://bucket/messages.jsonl", [result(1).to_record(), result(2).to_record()])
    assert [o["ErrorCode"] for o in outcomes] == ["NotifyFailed"] * 2
    assert "DefaultCredentialsError" in outcomes[0]["ErrorMessage"]


def test_short_writes_on_a_full_disk_fail_the_messages_not_written(tmp_path):
    """The messages file may grow by 20,000 bytes only (RLIMIT_FSIZE, in a child process)."""

    code = f"""
import json, resource
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
from snapshot import notify, results

records = [results.JobResult(f"job{{n:04d}}", "m", "Success", "now", "now", pipeline_id="p").to_record()
           for n in range(1000)]
print(json.dumps(notify.add_to_file({str(tmp_path / "m.jsonl")!r}, records)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    outcomes = json.loads(done.stdout)
    lines = (tmp_path / "m.jsonl").read_bytes().split(b"\n")
    whole = [json.loads(line) for line in lines if line.endswith(b"}") and line.startswith(b"{")]
    sent = [o for o in outcomes if o["MessageId"]]
    assert 0 < len(sent) < 1000 and len(sent) == len(whole)
    assert {m["JobId"] for m in whole} == {f"job{n:04d}" for n in range(len(sent))}
    failed = [o for o in outcomes if not o["MessageId"]]
    assert all(o["ErrorCode"] == "NotifyFailed" and "File too large" in o["ErrorMessage"] for o in failed)


@pytest.mark.parametrize("target", ["hang"], indirect=True)
def test_a_run_with_a_hanging_target_ends_in_time(tmp_path, bucket_root, target):
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": target.url}))
    line = json.loads(request_line(obj="v/missing.mp4"))
    lines = [json.dumps({**line, "PipelineId": "p", "UserData": str(n)}) for n in range(200)]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    targets = Targets.from_file("unused.jsonl", str(tmp_path / "pipelines.json"), QUICK)
    started = time.monotonic()
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)), targets)
    assert time.monotonic() - started < 30
    found = read_results(str(tmp_path / "res"))
    assert len(found) == 200 and all(r["MNSMessageResult"]["ErrorCode"] for r in found)
    assert len(target.received) <= QUICK.attempts * (QUICK.concurrency + QUICK.down_after)


@pytest.mark.parametrize("target", ["drip", "hang"], indirect=True)
def test_the_sync_commands_time_limit_covers_its_notification(tmp_path, bucket_root, target):
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": target.url}))
    started = time.monotonic()
    done = submit(
        "--input",
        json.dumps({"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"}),
        "--config",
        json.dumps({"OutputFile": {"Bucket": "out", "Location": "l", "Object": "x.jpg"}, "Time": 0}),
        "--pipeline-id",
        "p",
        "--pipelines",
        str(tmp_path / "pipelines.json"),
        "--bucket_root",
        str(bucket_root),
        "--sync_timeout",
        "2",
        cwd=tmp_path,
    )
    took = time.monotonic() - started
    job = json.loads(done.stdout)["SnapshotJob"]
    assert (done.returncode, job["State"]) == (0, "Success")
    assert job["MNSMessageResult"]["ErrorCode"] in ("Timeout", "NotifyFailed")
    assert took < 2 + 6  # the limit, plus the start of two Python processes


def test_the_sync_command_refuses_a_missing_bucket_root_like_the_pipeline(tmp_path):
    done = submit("--input", "{}", "--config", "{}", "--bucket_root", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2 and "not a folder" in done.stderr and not done.stdout
    assert not (tmp_path / "nowhere").exists()
