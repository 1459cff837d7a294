"""A run as a transaction on its results prefix (pipeline.runs): run folders, the lease, the
commit, resumable parts and messages delivered once, against real runs of the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline import runs
from pipeline.__main__ import STOPPED
from pipeline.show import read_results
from tests.helpers import ROOT, pipeline_args, pipeline_command, request_line

from .webhook_servers import Target

pytestmark = pytest.mark.slow  # whole runs of the command, some of them killed


def start(*args, **options) -> subprocess.Popen:
    return subprocess.Popen(
        pipeline_command(*args, **options),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(run: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = run.communicate(timeout=timeout)
    return run.returncode, out, err


def kill(run: subprocess.Popen) -> None:
    """SIGKILL the command and every process it started."""
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def done_markers(prefix: Path) -> list[Path]:
    return sorted(Path(f"{prefix}.runs").glob("*/part?????.json"))


def jobs(folder: Path, count: int, **config) -> Path:
    """A manifest of `count` quick jobs (keyframe posters of one input), with PipelineId `p`."""
    lines = [
        json.dumps({**json.loads(request_line(output=f"{n}.jpg", FrameType="intra", **config)), "PipelineId": "p"})
        for n in range(count)
    ]
    path = folder / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stopped_run_in_parts_is_taken_over_and_goes_on_from_its_done_parts(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 8)
    prefix = tmp_path / "r"
    first = start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet")
    wait_for(lambda: len(done_markers(prefix)) >= 2 or first.poll() is not None)
    kill(first)
    kept = len(done_markers(prefix))
    assert kept >= 2 and not list(tmp_path.glob("r-*.avro"))  # nothing committed

    code, out, err = finish(start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet"))

    assert code == 0, err
    assert "note: took over the lease of run " in err
    assert f": {2 * kept} of 8 lines were done" in err if kept < 4 else "8 of 8 lines were done" in err
    assert "8 jobs: 8 succeeded, 0 failed" in out
    records = read_results(str(prefix))
    assert sorted(r["Source"] for r in records) == sorted(f"m.jsonl:{n}" for n in range(1, 9))
    messages = [json.loads(line) for line in Path(f"{prefix}-messages.jsonl").read_text().splitlines()]
    assert sorted(m["JobId"] for m in messages) == sorted(r["Id"] for r in records)  # each once
    assert [p.name for p in Path(f"{prefix}.runs").iterdir()] == ["commit.json"]


def test_resume_of_a_stopped_runs_prefix_carries_its_done_parts(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 6)
    first = start(manifest, tmp_path / "r1", bucket_root, "--lines_per_part", "2", "--quiet")
    wait_for(lambda: len(done_markers(tmp_path / "r1")) >= 1 or first.poll() is not None)
    kill(first)
    done = 2 * len(done_markers(tmp_path / "r1"))
    assert 2 <= done < 6

    code, out, err = finish(start(manifest, tmp_path / "r2", bucket_root, "--quiet", "--resume", str(tmp_path / "r1")))

    assert code == 0, err
    assert f"6 jobs: {done} carried over, {6 - done} succeeded, 0 failed" in out


def test_ctrl_c_mid_run_is_one_line_and_exit_130_and_the_next_run_goes_on(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 8)
    prefix = tmp_path / "r"
    first = start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet")
    wait_for(lambda: len(done_markers(prefix)) >= 1 or first.poll() is not None)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
    code, out, err = finish(first)
    assert (code, out, err) == (130, "", "stopped: run the same command again to go on from the done parts\n")

    code, out, err = finish(start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet"))
    assert code == 0 and "lines were done" in err and "8 jobs: 8 succeeded, 0 failed" in out, err


def test_ctrl_c_inside_a_step_is_a_stop_too(tmp_path, bucket_root):
    """The one in-process worker waits on its decoding calls inside a step: a Ctrl-C there
    reaches the command wrapped in Beam's error, and is still a stop, not a failed run."""
    lines = [request_line(output=f"{n}.jpg", Time=n % 90 * 33, FrameType="normal", Width=64) for n in range(400)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    prefix = tmp_path / "r"
    first = start(manifest, prefix, bucket_root, "--quiet")
    wait_for(lambda: any((bucket_root / "out").glob("*.jpg")) or first.poll() is not None)
    os.killpg(first.pid, signal.SIGINT)
    code, out, err = finish(first)
    assert (code, out, err) == (130, "", STOPPED + "\n")
    code, out, err = finish(start(manifest, prefix, bucket_root, "--quiet"))
    assert code == 0 and "400 jobs: 400 succeeded, 0 failed" in out, err


def test_a_closed_stderr_does_not_stop_the_run(tmp_path, bucket_root):
    command = pipeline_command(jobs(tmp_path, 2), tmp_path / "r", bucket_root, "--quiet")
    done = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=300, preexec_fn=lambda: os.close(2)
    )
    assert done.returncode == 0 and "2 jobs: 2 succeeded, 0 failed" in done.stdout
    assert len(read_results(str(tmp_path / "r"))) == 2


def test_a_second_run_on_a_held_prefix_exits_2_naming_the_holder(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 12)
    prefix = tmp_path / "r"
    first = start(manifest, prefix, bucket_root, "--lines_per_part", "3", "--quiet")
    wait_for(lambda: Path(f"{prefix}.runs/lease").exists() and Path(f"{prefix}.runs/lease").stat().st_size > 0)

    code, out, err = finish(start(manifest, prefix, bucket_root, "--quiet"))

    holder = json.loads(Path(f"{prefix}.runs/lease").read_text())
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {prefix}.runs is held by run {holder['run']} (pid {first.pid} on ")
    code, out, _ = finish(first)
    assert code == 0 and "12 jobs: 12 succeeded" in out
    assert len(read_results(str(prefix))) == 12


FAILING = """
import sys
from pipeline import __main__ as command, graph

def broken(*args, **kwargs):
    raise OSError("the workers cannot be reached")

graph.build = broken
sys.exit(command.main(sys.argv[1:]))
"""


def test_a_failed_run_leaves_the_work_of_a_run_of_a_longer_prefix_alone(tmp_path, bucket_root):
    """res/run and res/run-2: the clean-up of the one that fails removes its own folder only."""
    manifest = jobs(tmp_path, 60)
    (tmp_path / "res").mkdir()
    other = start(manifest, tmp_path / "res" / "run-2", bucket_root, "--lines_per_part", "3", "--quiet")
    wait_for(lambda: len(list((bucket_root / "out").glob("*.jpg"))) >= 6)  # run-2 is in its parts
    failed = subprocess.run(
        [sys.executable, "-c", FAILING, *pipeline_args(manifest, tmp_path / "res" / "run", bucket_root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "error: the run failed (OSError: the workers cannot be reached)" in failed.stderr

    code, out, err = finish(other)

    assert code == 0, err
    assert len(read_results(str(tmp_path / "res" / "run-2"))) == 60
    assert sorted(p.name for p in (tmp_path / "res").iterdir() if not p.name.startswith("run-2")) == []


def test_a_manifest_rewritten_during_a_run_fails_it_and_the_earlier_results_stay(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 6)
    prefix = tmp_path / "r"
    code, _, err = finish(start(manifest, prefix, bucket_root, "--quiet"))
    assert code == 0, err
    earlier = read_results(str(prefix))
    run = start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet")
    wait_for(lambda: len(done_markers(prefix)) >= 1)
    lines = manifest.read_text().splitlines()
    lines[5] = lines[5].replace('"Time": 0', '"Time": 1')  # line 6: the same place, another request
    manifest.write_text("\n".join(lines) + "\n")

    code, _, err = finish(run)

    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("error: 1 lines changed during the run (m.jsonl:6): the manifest was rewritten")
    assert read_results(str(prefix)) == earlier


def test_a_fifo_as_a_messages_file_is_refused_before_the_run(tmp_path, bucket_root):
    fifo = tmp_path / "messages.jsonl"
    os.mkfifo(fifo)
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": str(fifo)}))
    manifest = jobs(tmp_path, 2)

    code, _, err = finish(
        start(manifest, tmp_path / "r", bucket_root, "--pipelines", str(tmp_path / "pipelines.json")), timeout=60
    )

    assert code == 2
    assert err.strip() == f"error: the notification target {fifo} is not a regular file"
    assert not list(tmp_path.glob("r*"))


def test_a_target_that_went_down_is_not_tried_again_in_later_parts(tmp_path, bucket_root):
    dead = Target(503)
    try:
        (tmp_path / "pipelines.json").write_text(json.dumps({"p": dead.url}))
        manifest = jobs(tmp_path, 60, Width=-1)  # invalid: each job fails at once, and sends its message
        code, out, err = finish(
            start(
                manifest,
                tmp_path / "r",
                bucket_root,
                "--lines_per_part",
                "10",
                "--quiet",
                "--pipelines",
                str(tmp_path / "pipelines.json"),
                "--notify_attempts",
                "1",
            )
        )
    finally:
        dead.stop()
    assert code == 3, err  # every job failed
    assert len(dead.received) <= 10  # the first part's; 60 when each part tried again
    records = read_results(str(tmp_path / "r"))
    assert all(r["MNSMessageResult"]["ErrorCode"] for r in records) and len(records) == 60


def test_a_full_disk_everywhere_still_gives_one_line_and_leaves_no_folder(tmp_path, bucket_root):
    """No file of the command may grow past 600 bytes: not the results, not the log."""
    manifest = jobs(tmp_path, 4)
    (tmp_path / "out").mkdir()
    code, _, err = finish(start(manifest, tmp_path / "out" / "r", bucket_root, "--quiet", max_file_bytes=600))
    assert code == 1 and "Traceback" not in err
    *warnings, line = err.strip().splitlines()  # a warning of a message that could not be staged, say
    assert line.startswith("error: the run failed (") and "File too large" in line, err
    assert all(warning.startswith("WARNING ") for warning in warnings)
    assert os.listdir(tmp_path / "out") == []


def append_capped(path: Path, lines: list[bytes], cap: int) -> str:
    """`snapshot.localfs.append_lines` in a process that may write no file past `cap` bytes."""
    code = f"""
import json, resource
from snapshot.localfs import append_lines
from snapshot.objects import PartialWrite
resource.setrlimit(resource.RLIMIT_FSIZE, ({cap}, {cap}))
try:
    print(append_lines({str(path)!r}, {lines!r}))
except PartialWrite as partial:
    print(partial.lines_written)
"""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_a_full_disk_leaves_the_messages_file_ending_at_its_last_whole_line(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [json.dumps({"JobId": n, "pad": "x" * 40}).encode() + b"\n" for n in range(10)]

    written = int(append_capped(path, lines, 200))
    assert 0 < written < 10 and path.read_bytes() == b"".join(lines[:written])
    assert int(append_capped(path, [b'{"JobId": "next"}\n'], 1000)) == 1
    assert [json.loads(line) for line in path.read_text().splitlines()][-1] == {"JobId": "next"}


def test_an_append_noted_before_a_stop_is_not_made_twice(tmp_path):
    from snapshot.localfs import append_lines

    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"earlier": 1}\n')
    lines = [f'{{"JobId": {n}}}\n'.encode() for n in range(4)]
    noted = []
    assert append_lines(str(path), lines, None, noted.append) == 4
    path.write_bytes(path.read_bytes()[:-3])  # as if stopped half way through the last line
    assert append_lines(str(path), lines, noted[0], noted.append) == 4
    assert path.read_bytes() == b'{"earlier": 1}\n' + b"".join(lines)
    assert append_lines(str(path), lines, noted[0], noted.append) == 4  # all there: nothing added
    assert path.read_bytes().count(b'"JobId": 3') == 1


def test_a_commit_left_half_done_is_waited_for_and_finished_by_the_next_run(tmp_path):
    """The commit record changes before any file: a reader that follows it never reads a
    mixture, and the next holder of the lease finishes the commit."""
    prefix = str(tmp_path / "r")
    for name, text in (("a", b"old 0"), ("b", b"old 1"), ("c", b"new 0")):
        (tmp_path / name).write_bytes(text)
    runs.commit(prefix, "run-1", [str(tmp_path / "a"), str(tmp_path / "b")])
    assert [Path(p).read_bytes() for p in runs.committed_files(prefix)] == [b"old 0", b"old 1"]
    # run-2 was stopped after it wrote its record and removed one earlier shard
    earlier = runs.committed_files(prefix)
    target = f"{prefix}-00000-of-00001.avro"
    Path(f"{prefix}.runs/commit.json").write_text(
        json.dumps(
            {
                "state": "committing",
                "run": "run-2",
                "shards": [Path(target).name],
                "remove": earlier,
                "moves": [[str(tmp_path / "c"), target]],
            }
        )
    )
    os.unlink(earlier[1])
    held = runs.Lease.take(prefix, "run-3")  # a run holds the prefix: it finishes the commit itself
    with pytest.raises(runs.Committing):
        runs.committed_files(prefix)
    assert runs.finish_commit(prefix) == "run-2"
    held.release()
    assert [Path(p).read_bytes() for p in runs.committed_files(prefix)] == [b"new 0"]
    assert sorted(p.name for p in tmp_path.glob("r-*")) == ["r-00000-of-00001.avro"]


def test_a_reader_finishes_a_commit_that_a_dead_run_left_when_no_run_holds_the_prefix(tmp_path, monkeypatch):
    """The record holds absolute paths, so a reader started in another folder, beside another
    prefix of the same relative name, finishes this commit and leaves that prefix alone."""
    monkeypatch.chdir(tmp_path)
    Path("old").write_bytes(b"old 0")
    Path("new").write_bytes(b"new 0")
    runs.commit("a/res/r", "run-1", ["old"])

    def dies(*args):
        raise SystemExit("the run dies here")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(runs, "_finish", dies)
        runs.commit("a/res/r", "run-2", ["new"])  # from a relative prefix, with relative shards
    record = json.loads(Path("a/res/r.runs/commit.json").read_text())
    assert record["state"] == "committing"
    assert all(os.path.isabs(path) for path in [*record["remove"], *(p for move in record["moves"] for p in move)])
    (tmp_path / "b" / "a" / "res").mkdir(parents=True)
    other = tmp_path / "b" / "a" / "res" / "r-00000-of-00001.avro"
    other.write_bytes(b"another prefix's")
    monkeypatch.chdir(tmp_path / "b")

    (committed,) = runs.committed_files(str(tmp_path / "a" / "res" / "r"))

    assert Path(committed).read_bytes() == b"new 0" and other.read_bytes() == b"another prefix's"


def test_only_folders_named_like_runs_are_runs(tmp_path):
    control = tmp_path / "k.runs"
    (control / "sub.runs").mkdir(parents=True)  # the control folder of a prefix k.runs/sub
    (control / "20261203T101500Z-3fa9c1").mkdir()
    assert runs.run_folders(str(tmp_path / "k")) == [str(control / "20261203T101500Z-3fa9c1")]


def test_a_messages_file_that_blocks_is_given_up_on_and_stays_down(tmp_path, bucket_root):
    """The messages file is locked by another process (as a hung mount would hold it) until
    the second part is done: the first part's delivery gives up after --notify_timeout, and
    writes nothing when the lock goes; the later parts do not wait."""
    import fcntl

    messages = tmp_path / "messages.jsonl"
    (tmp_path / "pipelines.json").write_text(json.dumps({"p": str(messages)}))
    flags = ["--lines_per_part", "2", "--quiet", "--notify_timeout", "2", "--notify_attempts", "1"]
    prefix = tmp_path / "r"
    with open(messages, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run = start(jobs(tmp_path, 6), prefix, bucket_root, *flags, "--pipelines", str(tmp_path / "pipelines.json"))
        wait_for(lambda: len(done_markers(prefix)) >= 2 or run.poll() is not None)
    code, out, err = finish(run)
    assert code == 0, err
    results = [r["MNSMessageResult"] for r in read_results(str(prefix))]
    errors = sorted(r["ErrorMessage"] for r in results)
    assert (
        errors
        == ["target down: earlier messages to it failed in this run"] * 4
        + ["writing the messages file failed: no answer within 2 s"] * 2
    ), errors
    assert messages.read_bytes() == b""  # not sent, and not written either


def test_a_no_wait_job_writes_outside_the_protocol_and_readers_find_its_shards(tmp_path, bucket_root):
    manifest = jobs(tmp_path, 3)
    prefix = tmp_path / "r"
    assert finish(start(manifest, prefix, bucket_root, "--quiet"))[0] == 0
    assert Path(f"{prefix}.runs/commit.json").exists()
    manifest.write_text(manifest.read_text().replace('"Time": 0', '"Time": 1000'))

    code, out, err = finish(start(manifest, prefix, bucket_root, "--no_wait"))  # the local runner ends it at once

    assert code == 0 and out.startswith("submitted: job "), err
    assert not Path(f"{prefix}.runs/commit.json").exists()
    assert {r["Snapshots"][0]["Time"] for r in read_results(str(prefix))} == {1000}  # the job's own shards


DIES = """
import importlib, os, sys
from pipeline import __main__ as command

def die(*args, **kwargs):
    os._exit(9)  # the process ends here, as if killed

module, name = sys.argv.pop(1).rsplit(".", 1)
setattr(importlib.import_module(module), name, die)
sys.exit(command.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("where", ["pipeline.runs._place", "pipeline.runs.remove_tree"])  # in the commit; after it
def test_a_run_that_dies_in_its_commit_is_finished_by_the_next_without_running_again(tmp_path, bucket_root, where):
    manifest = jobs(tmp_path, 4)
    prefix = tmp_path / "r"
    args = pipeline_args(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet")
    died = subprocess.run([sys.executable, "-c", DIES, where, *args], cwd=ROOT, capture_output=True, timeout=300)
    assert died.returncode == 9
    images = {p.name: p.stat().st_mtime_ns for p in (bucket_root / "out").glob("*.jpg")}

    code, out, err = finish(start(manifest, prefix, bucket_root, "--lines_per_part", "2", "--quiet"))

    assert code == 0 and "4 jobs: 4 succeeded, 0 failed" in out, err
    if where.endswith("_place"):
        assert "note: finished the commit that run " in err
    assert ": 4 of 4 lines were done" in err
    assert {p.name: p.stat().st_mtime_ns for p in (bucket_root / "out").glob("*.jpg")} == images  # nothing ran
    sent = Counter(json.loads(line)["JobId"] for line in Path(f"{prefix}-messages.jsonl").read_text().splitlines())
    assert sent == {r["Id"]: 1 for r in read_results(str(prefix))}
    assert [p.name for p in Path(f"{prefix}.runs").iterdir()] == ["commit.json"]


def test_messages_of_a_part_taken_over_reach_the_target_however_the_prefix_is_spelled(tmp_path, bucket_root):
    """Stopped after its first part was done, before its messages were delivered; run again
    with the prefix spelled another way: the default messages file is the same file."""
    manifest = jobs(tmp_path, 4)
    args = pipeline_args(manifest, tmp_path / "r", bucket_root, "--lines_per_part", "2", "--quiet")
    died = subprocess.run(
        [sys.executable, "-c", DIES, "pipeline.delivery.deliver", *args], cwd=ROOT, capture_output=True, timeout=300
    )
    assert died.returncode == 9

    again = subprocess.run(
        pipeline_command(manifest, "./r", bucket_root, "--lines_per_part", "2", "--quiet"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )

    assert again.returncode == 0 and ": 2 of 4 lines were done" in again.stderr, again.stderr
    records = read_results(str(tmp_path / "r"))
    assert all(r["MNSMessageResult"]["MessageId"] for r in records)
    sent = Counter(json.loads(line)["JobId"] for line in (tmp_path / "r-messages.jsonl").read_text().splitlines())
    assert sent == {r["Id"]: 1 for r in records}
