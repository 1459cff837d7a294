"""Chaos: a 200-line manifest in parts of 20, killed with SIGKILL at seeded random moments and
run again each time, on a local prefix and on a gs:// one (the GCS emulator), with a second
run started while one holds the prefix and a reader sampling the prefix all along. At the
end: one result per line, every image of a Success shows its frame, every message recorded
as sent is in its target once, no run folder is left, and no sample ever mixed two runs."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from pipeline import runs
from pipeline.show import read_results, records_of
from snapshot import synth
from tests.helpers import request_line
from tests.test_gcs import default_credentials, emulator, gcs  # noqa: F401 - fixtures
from tests.test_runs import finish, jobs, kill, start, wait_for

pytestmark = pytest.mark.slow

LINES, PART, KILLS = 200, 20, 10


def manifest(folder: Path, version: str) -> Path:
    """LINES keyframe posters at 0, 1 and 2 s (frames 0, 30, 60), all with PipelineId `p`."""
    lines = []
    for n in range(LINES):
        line = json.loads(request_line(output=f"{version}/{n}.jpg", FrameType="intra", Time=1000 * (n % 3)))
        lines.append(json.dumps({**line, "PipelineId": "p", "UserData": version}))
    path = folder / f"{version}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


class Sampler(threading.Thread):
    """Reads the prefix over and over, as `show` does (following the commit record) and as a
    tool that globs the shards does; a sample that holds records of two runs is kept."""

    def __init__(self, prefix: str):
        super().__init__(daemon=True)
        self.prefix, self.stop, self.samples, self.mixed = prefix, threading.Event(), Counter(), []

    def run(self) -> None:
        while not self.stop.is_set():
            versions = Counter(r["UserData"] for r in read_results(self.prefix))
            self.samples["followed"] += 1
            if len(versions) > 1 or sum(versions.values()) not in (0, LINES):
                self.mixed.append(("followed", dict(versions)))
            try:
                globbed = Counter(r["UserData"] for r in records_of(runs.shards_of(self.prefix)))
            except Exception:  # noqa: BLE001 - a shard removed between the listing and the read
                continue
            self.samples["globbed"] += 1
            if len(globbed) > 1:
                self.mixed.append(("globbed", dict(globbed)))


def chaos(tmp_path: Path, bucket_root: Path, prefix: str, messages: str, seed: int) -> dict:
    rng = random.Random(seed)
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": messages}))
    flags = ["--quiet", "--pipelines", str(tmp_path / "pipelines.json")]
    code, _, err = finish(start(manifest(tmp_path, "v1"), prefix, bucket_root, *flags))
    assert code == 0, err
    v2 = manifest(tmp_path, "v2")
    command = (v2, prefix, bucket_root, "--lines_per_part", str(PART), *flags)
    sampler = Sampler(prefix)
    sampler.start()
    run = start(*command)
    wait_for(lambda: _holder(prefix) == run.pid)
    refused = finish(start(*command), timeout=120)  # a second run while the first holds the prefix
    moments = []
    for _ in range(KILLS):
        moments.append(kill_at_random(run, prefix, rng))
        run = start(*command)
    code, out, err = finish(run)
    sampler.stop.set()
    sampler.join()
    assert code == 0, err
    assert f"{LINES} jobs: {LINES} succeeded, 0 failed" in out
    assert set(moments) == {"starting", "leased", "part done"}, moments
    assert "note: went on from the stopped run " in err, err
    assert refused[0] == 2 and " is held by run " in refused[2], refused
    assert sampler.samples["followed"] > 10 and sampler.mixed == []
    return {"records": read_results(prefix), "note": err}


def kill_at_random(run, prefix: str, rng: random.Random) -> str:
    """SIGKILL `run` at a moment drawn at random: while it starts, while it holds the lease, or
    just after a part is done (while its messages are delivered and the next part starts). Each
    kill lets at most about one part finish, so that all the kills come before the end."""
    done = len(_markers(prefix))
    moment = rng.choice(["starting", "leased", "part done"] if done < LINES // PART - 3 else ["starting"])
    if moment == "leased":
        wait_for(lambda: _holder(prefix) == run.pid)
    elif moment == "part done":
        wait_for(lambda: len(_markers(prefix)) > done)
    time.sleep(rng.uniform(0, 0.8 if moment == "starting" else 0.3))
    assert run.poll() is None, "the run ended before it was killed"
    kill(run)
    return moment


def _markers(prefix: str) -> list[str]:
    return [m.path for m in FileSystems.match([f"{runs.control(prefix)}/*/part?????.json"])[0].metadata_list]


def _holder(prefix: str) -> int | None:
    """The pid that the prefix's lease names, if any."""
    try:
        with FileSystems.open(f"{runs.control(prefix)}/lease") as stream:
            return json.loads(stream.read() or b"{}").get("pid")
    except Exception:  # noqa: BLE001 - not there yet, or being written
        return None


def check_outcome(records: list[dict], image, message_lines: list[bytes]) -> None:
    assert sorted(int(r["Source"].rsplit(":", 1)[1]) for r in records) == list(range(1, LINES + 1))
    assert {r["UserData"] for r in records} == {"v2"} and {r["State"] for r in records} == {"Success"}
    for r in records:
        n = int(r["Source"].rsplit(":", 1)[1]) - 1
        (snapshot,) = r["Snapshots"]
        assert synth.read_index(image(snapshot["Object"])) == 30 * (n % 3)
    sent = Counter(json.loads(line)["JobId"] for line in message_lines)
    recorded = [r["Id"] for r in records if r["MNSMessageResult"]["MessageId"]]
    assert len(recorded) == LINES and all(sent[job_id] == 1 for job_id in recorded)


def test_chaos_on_a_local_prefix(tmp_path, bucket_root):
    prefix = str(tmp_path / "res" / "run")
    messages = tmp_path / "messages.jsonl"

    outcome = chaos(tmp_path, bucket_root, prefix, str(messages), seed=23)

    check_outcome(
        outcome["records"],
        lambda name: Image.open(bucket_root / "out" / name),
        messages.read_bytes().splitlines(),
    )
    committed = [Path(path).name for path in runs.committed_files(prefix)]
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == sorted([*committed, "run.runs"])
    assert [p.name for p in Path(runs.control(prefix)).iterdir()] == ["commit.json"]


def test_chaos_on_a_gcs_prefix(tmp_path, bucket_root, gcs):  # noqa: F811 - the fixture
    ops = gcs.bucket("ops")
    prefix = f"gs://{ops}/res/run"

    outcome = chaos(tmp_path, bucket_root, prefix, f"gs://{ops}/messages.jsonl", seed=24)

    check_outcome(
        outcome["records"],
        lambda name: Image.open(bucket_root / "out" / name),
        gcs.download(ops, "messages.jsonl").splitlines(),
    )
    committed = [f"res/{path.rsplit('/', 1)[1]}" for path in runs.committed_files(prefix)]
    names = sorted(blob.name for blob in gcs.client.list_blobs(ops))
    assert names == sorted(["messages.jsonl", "res/run.runs/commit.json", *committed])


def test_a_gcs_messages_file_keeps_the_messages_of_every_part_and_every_run(tmp_path, bucket_root, gcs):  # noqa: F811
    ops = gcs.bucket("ops")
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": f"gs://{ops}/messages.jsonl"}))
    manifest = jobs(tmp_path, 4)
    command = (manifest, f"gs://{ops}/res/run", bucket_root, "--lines_per_part", "2", "--quiet")

    for run in range(2):
        code, _, err = finish(start(*command, "--pipelines", str(tmp_path / "pipelines.json")))
        assert code == 0, err
        sent = Counter(json.loads(line)["JobId"] for line in gcs.download(ops, "messages.jsonl").splitlines())
        records = read_results(f"gs://{ops}/res/run")
        assert all(r["MNSMessageResult"]["MessageId"] for r in records) and len(records) == 4
        assert sent == {r["Id"]: run + 1 for r in records}  # appended to, run after run, part after part


def test_a_stopped_run_on_gcs_is_cleared_by_the_next_one(tmp_path, bucket_root, gcs):  # noqa: F811
    """The next run is one part (--lines_per_part 0): it adopts none of the stopped run's
    parts of 2 lines, runs every line once, and removes the stopped run's folder."""
    ops = gcs.bucket("ops")
    prefix = f"gs://{ops}/res/run"
    manifest = jobs(tmp_path, 8)
    first = start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet")
    wait_for(lambda: len(list((bucket_root / "out").glob("*.jpg"))) >= 6)  # two parts done, the third under way
    kill(first)

    code, out, err = finish(start(manifest, prefix, bucket_root, "--lines_per_part", "0", "--quiet"))

    assert code == 0, err
    assert "8 jobs: 8 succeeded, 0 failed" in out
    assert sorted(r["Source"] for r in read_results(prefix)) == sorted(f"m.jsonl:{n}" for n in range(1, 9))
    names = [blob.name for blob in gcs.client.list_blobs(ops)]
    left = [n for n in names if not n.startswith("res/run-") and n != "res/run.runs/commit.json"]
    assert left == []  # nothing of the stopped run
