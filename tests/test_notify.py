"""PipelineId notifications against real HTTP receivers on 127.0.0.1, JSON Lines targets, and the
synchronous snapshot command."""

from __future__ import annotations

import faulthandler
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alibabacloud_mts20140618 import models as mts
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipeline import graph
from pipeline.show import read_results
from snapshot import errors, isolation, notify
from snapshot.errors import SnapshotError
from snapshot.storage import Buckets
from snapshot.targets import Delivery, Targets
from tests.helpers import request_line, submit

from .gcs_servers import free_port

pytestmark = pytest.mark.slow  # real servers and killed processes


MESSAGE_KEYS = {
    "messageId",
    "MessageId",
    "jobId",
    "JobId",
    "requestId",
    "RequestId",
    "type",
    "Type",
    "state",
    "State",
    "userData",
    "UserData",
}


class Receiver:
    """An HTTP endpoint that records what it receives and answers with `answers` in turn
    (then 200); the answer 'hang' never answers."""

    def __init__(self, *answers):
        self.received, self.answers = [], list(answers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((self.headers.get("X-Message-Id"), body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    time.sleep(3)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = {"ok": Receiver(), "flaky": Receiver(500, 500), "silent": Receiver(*["hang"] * 10)}
    yield made
    for receiver in made.values():
        receiver.stop()


def with_pipeline(pipeline_id: str, **config) -> str:
    line = json.loads(request_line(**config))
    line.update(PipelineId=pipeline_id, UserData=f"data of {pipeline_id}")
    return json.dumps(line)


def test_messages_reach_each_target_and_their_outcome_lands_in_the_result(tmp_path, bucket_root, receivers):
    pipelines = {
        "ok": receivers["ok"].url,
        "flaky": receivers["flaky"].url,
        "silent": receivers["silent"].url,
        "closed": f"http://127.0.0.1:{free_port()}/nobody",
        "file": str(tmp_path / "out" / "msgs.jsonl"),
    }
    (tmp_path / "pipelines.json").write_text(json.dumps(pipelines))
    lines = [
        with_pipeline("ok", Time=1010, FrameType="normal"),
        with_pipeline("flaky", Time=0),
        with_pipeline("silent", Time=0),
        with_pipeline("closed", Time=0),
        with_pipeline("file", Time=0),
        with_pipeline("file", obj="v/missing.mp4"),
        with_pipeline("unknown", Time=0),
        request_line(Time=0),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    targets = Targets.from_file(
        "unused.jsonl", str(tmp_path / "pipelines.json"), Delivery(attempts=3, initial_s=0.05, timeout_s=0.5)
    )
    started = time.monotonic()
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)), targets)
    assert time.monotonic() - started < 60
    found = {r["Source"]: r for r in read_results(str(tmp_path / "res"))}
    mns = {int(s.split(":")[1]): found[s]["MNSMessageResult"] for s in found}
    state = {int(s.split(":")[1]): (found[s]["State"], found[s]["Code"]) for s in found}
    ids = {int(s.split(":")[1]): found[s]["Id"] for s in found}

    ((header, body),) = receivers["ok"].received
    assert mns[1] == {"MessageId": header, "ErrorCode": None, "ErrorMessage": None}
    assert header == body["MessageId"] == body["messageId"] and set(body) == MESSAGE_KEYS
    assert (body["JobId"], body["jobId"], body["State"], body["Type"], body["UserData"]) == (
        ids[1],
        ids[1],
        "Success",
        "Snapshot",
        "data of ok",
    )

    assert len(receivers["flaky"].received) == 3  # 500, 500, then 200, with one id
    assert {h for h, _ in receivers["flaky"].received} == {mns[2]["MessageId"]}
    assert {b["JobId"] for _, b in receivers["flaky"].received} == {ids[2]}  # the same message each time

    assert (mns[3]["MessageId"], mns[3]["ErrorCode"]) == (None, "Timeout")
    assert (mns[4]["MessageId"], mns[4]["ErrorCode"]) == (None, "ConnectionError")
    assert state[3] == state[4] == ("Success", "")  # a target that is down never fails the job

    assert mns[5]["MessageId"] and mns[6]["MessageId"]
    written = [json.loads(x) for x in (tmp_path / "out" / "msgs.jsonl").read_text().splitlines()]
    assert sorted(m["JobId"] for m in written) == sorted([ids[5], ids[6]])
    failed = next(m for m in written if m["JobId"] == ids[6])
    assert (failed["State"], failed["code"]) == ("Fail", errors.RESOURCE_NOT_FOUND) and failed["msg"]
    assert set(failed) == MESSAGE_KEYS | {"code", "msg"}

    assert state[7] == ("Fail", errors.INVALID_PARAMETER) and "unknown" in found["m.jsonl:7"]["Message"]
    assert found["m.jsonl:7"]["BytesRead"] == 0  # refused before any capture work
    assert mns[8] is None  # no PipelineId: no message


def test_without_a_pipelines_file_messages_go_beside_the_results(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text(with_pipeline("any", Time=0) + "\n" + request_line(Time=0) + "\n")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)))
    messages = (tmp_path / "res-messages.jsonl").read_text().splitlines()
    (record,) = [r for r in read_results(str(tmp_path / "res")) if r["PipelineId"]]
    assert [json.loads(m)["JobId"] for m in messages] == [record["Id"]]
    assert record["MNSMessageResult"]["MessageId"] == notify.message_id(record) == json.loads(messages[0])["MessageId"]


def test_a_message_id_is_the_same_for_the_same_message_and_new_for_another(tmp_path):
    """Delivery is at least once: a receiver drops a retry's or a rerun's message by its id,
    and never a message of another job or another outcome."""
    record = {"Id": "a" * 32, "State": "Success", "Code": "", "Message": "", "UserData": "u"}
    again = dict(record, MNSMessageResult={"MessageId": "x"}, FinishTime="later")  # a rerun of the line
    failed = dict(record, State="Fail", Code=errors.SNAPSHOT_TIMEOUT, Message="ran past its time limit")
    other = dict(record, Id="b" * 32)
    ids = [notify.message(r)["MessageId"] for r in (record, again, failed, other)]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    target = str(tmp_path / "m.jsonl")
    outcomes = notify.add_to_file(target, [record]) + notify.add_to_file(target, [again])
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [line["MessageId"] for line in lines] == [o["MessageId"] for o in outcomes] == ids[:1] * 2
    assert len({line["MessageId"]: line for line in lines}) == 1  # what a receiver keeps


def test_sync_command_answers_in_the_api_format(tmp_path, bucket_root, receivers):
    (tmp_path / "pipelines.json").write_text(json.dumps({"q": receivers["ok"].url}))
    done = submit(
        "--input",
        json.dumps({"Bucket": "in", "Location": "oss-cn-hangzhou", "Object": "v/h264.mp4"}),
        "--config",
        json.dumps(
            {
                "OutputFile": {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "sync/{FileName}.jpg"},
                "Time": "1010",
                "FrameType": "normal",
                "Width": "160",
            }
        ),
        "--pipeline-id",
        "q",
        "--user-data",
        "u",
        "--bucket_root",
        str(bucket_root),
        "--pipelines",
        str(tmp_path / "pipelines.json"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    body = mts.SubmitSnapshotJobResponseBody().from_map(json.loads(done.stdout))
    job = body.snapshot_job
    assert (job.state, job.count, job.user_data, job.pipeline_id) == ("Success", "1", "u", "q")
    assert (job.snapshot_config.time, job.snapshot_config.width) == ("1010", "160")
    assert receivers["ok"].received[0][1]["JobId"] == job.id
    assert job.mnsmessage_result.message_id == receivers["ok"].received[0][0]
    from PIL import Image

    from snapshot import synth

    assert synth.read_index(Image.open(bucket_root / "out" / "sync" / "h264.jpg")) == 30


def test_sync_command_past_its_time_limit_answers_snapshot_timeout(tmp_path, bucket_root):
    os.mkfifo(bucket_root / "in" / "v" / "stuck.mp4")  # reading it blocks forever: a stuck job
    started = time.monotonic()
    done = submit(
        "--input",
        json.dumps({"Bucket": "in", "Location": "l", "Object": "v/stuck.mp4"}),
        "--config",
        json.dumps({"OutputFile": {"Bucket": "out", "Location": "l", "Object": "x.jpg"}, "Time": 0}),
        "--bucket_root",
        str(bucket_root),
        "--sync_timeout",
        "1",
        cwd=tmp_path,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 3
    job = mts.SubmitSnapshotJobResponseBody().from_map(json.loads(done.stdout)).snapshot_job
    assert (job.state, job.code, job.count) == ("Fail", errors.SNAPSHOT_TIMEOUT, "0")
    assert not (tmp_path / "snapshot-messages.jsonl").exists()  # no PipelineId, no message


def test_sync_command_rejects_an_unknown_pipeline_and_bad_json(tmp_path, bucket_root):
    (tmp_path / "pipelines.json").write_text(json.dumps({"q": "http://127.0.0.1:9/x"}))
    done = submit("--input", "{not json", "--config", "{}", "--bucket_root", str(bucket_root), cwd=tmp_path)
    answer = json.loads(done.stdout)["SnapshotJob"]
    assert (done.returncode, answer["State"], answer["Code"]) == (3, "Fail", errors.JSON_FORMAT_INVALID)
    done = submit(
        "--input",
        json.dumps({"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"}),
        "--config",
        json.dumps({"OutputFile": {"Bucket": "out", "Location": "l", "Object": "x.jpg"}, "Time": 0}),
        "--pipeline-id",
        "other",
        "--pipelines",
        str(tmp_path / "pipelines.json"),
        "--bucket_root",
        str(bucket_root),
        cwd=tmp_path,
    )
    answer = json.loads(done.stdout)["SnapshotJob"]
    assert (answer["Code"], answer["Count"]) == (errors.INVALID_PARAMETER, "0") and "other" in answer["Message"]
    assert not (bucket_root / "out" / "x.jpg").exists()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_isolated_work_is_killed_at_its_limit_and_crashes_are_contained(start_method):
    worker = isolation.Worker(start_method)
    assert worker.call(sum, ([1, 2, 3],), 10) == 6
    first = worker.process.pid
    assert worker.call(sum, ([4],), 10) == 4 and worker.process.pid == first  # the same child serves again
    with pytest.raises(SnapshotError) as caught:
        worker.call(time.sleep, (30,), 0.5)
    assert caught.value.code == errors.SNAPSHOT_TIMEOUT
    assert worker.process is None
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # killed and reaped, not abandoned
    with pytest.raises(SnapshotError) as caught:
        worker.call(_abort, (), 10)
    assert caught.value.code == errors.RESOURCE_CONTENT_BAD and "SIGABRT" in caught.value.message
    with pytest.raises(SnapshotError) as caught:
        worker.call(os._exit, (3,), 10)
    assert caught.value.code == errors.INTERNAL_ERROR and "exit code 3" in caught.value.message
    with pytest.raises(SnapshotError) as caught:
        worker.call(_raise_coded, (), 10)
    assert caught.value.code == errors.RESOURCE_CONTENT_BAD
    assert worker.call(sum, ([5],), 10) == 5  # a new child after each death
    last = worker.process.pid
    worker.close()
    with pytest.raises(ProcessLookupError):
        os.kill(last, 0)


def _abort():
    faulthandler.disable()  # keep the test output clean; the abort is the point
    os.abort()


def _raise_coded():
    raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "bad")


def _log_a_failure():
    import logging

    try:
        raise ValueError("deep inside the decoder")
    except ValueError:
        logging.getLogger("snapshot.jobs").exception("capture failed")
    return 7


def test_logs_of_a_decoding_process_reach_the_workers_log(caplog):
    worker = isolation.Worker("spawn")
    try:
        with caplog.at_level("INFO"):
            assert worker.call(_log_a_failure, (), 30) == 7
    finally:
        worker.close()
    (record,) = [r for r in caplog.records if r.name == "snapshot.jobs"]
    assert record.levelname == "ERROR" and record.getMessage().startswith("capture failed\nTraceback")
    assert "ValueError: deep inside the decoder" in record.getMessage()
