"""No secret is ever printed: the user, password and query of a target's URL, whatever the
scheme's case, never reach a message, a log line, stdout, stderr or the results."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.show import read_results
from snapshot import targets
from snapshot.targets import Targets
from tests.helpers import ROOT, pipeline_command, request_line, submit

from .webhook_servers import Target

PASSWORD, TOKEN = "s3cr3t-pw", "t0ken-42"
SECRETS = (PASSWORD, TOKEN, "alice")


def with_secrets(url: str, scheme: str) -> str:
    """`url` with a user, a password and a token, and its scheme spelled `scheme`."""
    return url.replace("http://", f"{scheme}://alice:{PASSWORD}@", 1) + f"?token={TOKEN}"


def leaks(*texts: str) -> list[str]:
    return [secret for secret in SECRETS for text in texts if secret in text]


def test_redaction_keeps_the_scheme_host_port_and_path_only():
    assert targets.redact(f"HTTPS://alice:{PASSWORD}@host:8443/hook?token={TOKEN}#x") == "https://host:8443/hook"
    assert targets.redact(f"Https://alice:{PASSWORD}@[::1]/?token={TOKEN}") == "https://[::1]/"
    assert targets.redact(f"HTTPS//alice:{PASSWORD}@host/x?token={TOKEN}") == "HTTPS//host/x"  # no scheme: still
    assert targets.redact("/var/spool/messages.jsonl") == "/var/spool/messages.jsonl"


def test_a_targets_scheme_is_read_in_any_case_and_a_refusal_names_no_secret(tmp_path):
    for scheme in ("HTTPS", "Http", "http"):
        assert targets.kind(with_secrets("http://host/hook", scheme)) is targets.TargetKind.HTTP
    assert targets.kind("PubSub://projects/p/topics/t") is targets.TargetKind.PUBSUB
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": with_secrets("http://host/hook", "FTP")}))
    with pytest.raises(ValueError) as refused:
        Targets.from_file("m.jsonl", str(tmp_path / "pipelines.json"))
    assert str(refused.value).endswith(": ftp://host/hook") and not leaks(str(refused.value))


@pytest.fixture
def receiver():
    made = Target(200)
    yield made
    made.stop()


@pytest.mark.slow
def test_the_pipeline_never_prints_or_stores_a_targets_secrets(tmp_path, bucket_root, receiver):
    pipelines = {"up": with_secrets(receiver.url, "HTTP"), "down": with_secrets("http://127.0.0.1:1/hook", "HTTPS")}
    (tmp_path / "pipelines.json").write_text(json.dumps(pipelines))
    lines = [
        json.dumps({**json.loads(request_line(output="a.jpg")), "PipelineId": "up"}),
        json.dumps({**json.loads(request_line(output="b.jpg")), "PipelineId": "down"}),
        json.dumps({**json.loads(request_line(obj="v/missing.mp4")), "PipelineId": "down"}),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    flags = ["--pipelines", str(tmp_path / "pipelines.json"), "--notify_attempts", "1", "--quiet"]
    done = subprocess.run(
        pipeline_command(tmp_path / "m.jsonl", tmp_path / "r", bucket_root, *flags),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr  # the missing input
    records = read_results(str(tmp_path / "r"))
    assert [r["MNSMessageResult"]["MessageId"] is not None for r in records] == [True, False, False]
    assert "https://127.0.0.1:1/hook" in done.stderr  # the target that failed is named, redacted
    assert not leaks(done.stdout, done.stderr, json.dumps(records, default=str))
    assert receiver.received[0][3]["authorization"].startswith("Basic ")  # the credentials still go, as auth

    (tmp_path / "pipelines.json").write_text(json.dumps({"p": with_secrets(receiver.url, "FTP")}))
    refused = subprocess.run(
        pipeline_command(tmp_path / "m.jsonl", tmp_path / "r2", bucket_root, *flags),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "ftp://127.0.0.1:" in refused.stderr
    assert not leaks(refused.stdout, refused.stderr)


@pytest.mark.slow
def test_the_sync_command_never_prints_a_targets_secrets(tmp_path, bucket_root, receiver):
    common = ["--bucket_root", str(bucket_root), "--pipeline_id", "p", "--pipelines", str(tmp_path / "pipelines.json")]
    request = ["--input", json.dumps({"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"})]
    request += [
        "--config",
        json.dumps({"OutputFile": {"Bucket": "out", "Location": "l", "Object": "x.jpg"}, "Time": 0}),
    ]
    for target in (with_secrets(receiver.url, "HTTP"), with_secrets("http://127.0.0.1:1/", "HTTPS")):
        (tmp_path / "pipelines.json").write_text(json.dumps({"p": target}))
        done = submit(*request, *common, cwd=tmp_path)
        assert done.returncode == 0 and not leaks(done.stdout, done.stderr), done.stdout + done.stderr
    assert len(receiver.received) == 1
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": with_secrets(receiver.url, "FTP")}))
    refused = submit(*request, *common, cwd=tmp_path)
    assert refused.returncode == 2 and "ftp://127.0.0.1:" in refused.stderr and not leaks(refused.stderr)


@pytest.mark.slow
def test_the_sync_commands_output_survives_a_reader_that_goes_away(tmp_path, bucket_root):
    """An answer of 400 snapshots is more than a pipe holds: it is still being written when
    the reader (`| head -1`) goes away."""
    config = {"OutputFile": {"Bucket": "out", "Location": "l", "Object": "{Count}.jpg"}, "Width": 8}
    config["TimeArray"] = {"TimePointList": list(range(0, 2000, 5))}
    request = ["--input", json.dumps({"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"})]
    request += ["--config", json.dumps(config)]
    command = [sys.executable, "-m", "pipeline.submit", *request, "--bucket_root", str(bucket_root)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None and run.stderr is not None
        assert run.stdout.readline() == b"{\n"  # as `| head -1` reads it
        run.stdout.close()
        err = run.stderr.read().decode()
    assert run.returncode == 0 and "Traceback" not in err, err
