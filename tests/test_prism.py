"""The portable path: Beam's Prism runner handing bundles over the Fn API to SDK workers that a
worker pool starts in processes of their own (EXTERNAL), as Flink and Dataflow's Runner v2 do.
Prism is built by scripts/prism.sh when missing; if it cannot be, these tests fail, saying why."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from pipeline.show import read_results
from snapshot import errors, slots
from tests.helpers import ROOT, pipeline_command, request_line
from tests.test_end_to_end import manifest_lines

from .gcs_servers import free_port, wait_for_port

pytestmark = pytest.mark.slow  # Prism, a worker pool and whole runs of the command


@pytest.fixture(scope="session")
def prism() -> str:
    try:
        built = subprocess.run(
            [os.path.join(ROOT, "scripts", "prism.sh")], capture_output=True, text=True, timeout=1200
        )
    except subprocess.TimeoutExpired:
        pytest.fail("building Prism with scripts/prism.sh took more than 20 minutes")
    if built.returncode != 0:
        pytest.fail(f"Prism could not be installed by scripts/prism.sh: {built.stderr.strip()[-2000:]}")
    return built.stdout.strip()


@pytest.fixture
def environment(tmp_path) -> dict[str, str]:
    """The pool's and the commands' environment: this Python first on PATH (the pool starts
    its SDK workers as `python`), and decoder slots of the test's own."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, slots.FOLDER_VARIABLE: str(tmp_path / "slots")}


@contextlib.contextmanager
def worker_pool(log_path, environment):
    """Beam's worker pool on a free port: (its port, its pid), stopped on leaving."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        wait_for_port(port)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def pool(tmp_path, environment):
    with worker_pool(tmp_path / "pool.log", environment) as started:
        yield started


def sample_slots(runs: list[subprocess.Popen], environment) -> list[list[tuple[int, int]]]:
    """The decoder slots held, every 5 ms until the commands end."""
    seen: list[list[tuple[int, int]]] = []
    while any(command.poll() is None for command in runs):
        seen.append(slots.busy(1, environment[slots.FOLDER_VARIABLE]))
        time.sleep(0.005)
    return seen


def on_prism(prism: str, port: int, *flags: str) -> list[str]:
    return ["--runner", "PrismRunner", "--prism_location", prism, "--environment_type", "EXTERNAL",
            "--environment_config", f"localhost:{port}", *flags]  # fmt: skip


def start(environment, manifest, results, bucket_root, *flags) -> subprocess.Popen:
    return subprocess.Popen(
        pipeline_command(manifest, results, bucket_root, *flags),
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(command: subprocess.Popen) -> None:
    out, err = command.communicate(timeout=600)
    assert command.returncode in (0, 3), err  # 3: some jobs failed, on purpose
    assert "failed" in out


def outputs(root, results, name: str) -> tuple[dict, list[dict]]:
    """The images under `root` and the records of `results`, without times and with URLs
    that do not name the copy."""
    images = {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "out").rglob("*") if p.is_file()}
    records = [{k: v for k, v in r.items() if k not in ("CreationTime", "FinishTime")} for r in read_results(results)]
    for record in records:
        for snapshot in record["Snapshots"]:
            snapshot["Url"] = snapshot["Url"].replace(f"/{name}/", "/")
    return images, sorted(records, key=lambda r: r["Source"])


def test_prism_with_external_workers_gives_the_local_run_s_records_and_bytes(
    tmp_path, bucket_root, prism, pool, environment
):
    port, pool_pid = pool
    manifest = tmp_path / "jobs.jsonl"
    smart = [  # their frames are chosen by scores: the same on every runner
        request_line(output="best/{Count}.jpg", Time=500, Num=2, Interval=1, FrameType="best", BestWindow=800),
        request_line(output="scene/{Count}.jpg", FrameType="scene"),
    ]
    manifest.write_text("\n".join(manifest_lines() + smart) + "\n")
    found = {}
    for name, flags in (("local", ()), ("prism", on_prism(prism, port))):
        root = tmp_path / name
        shutil.copytree(bucket_root, root)
        command = start(environment, manifest, tmp_path / name / "res", root, *flags)
        finished(command)
        found[name] = outputs(root, str(tmp_path / name / "res"), name)
        if name == "prism":
            launcher = command.pid
    assert found["prism"] == found["local"] and len(found["local"][0]) == 10 and len(found["local"][1]) == 9
    # Every decoding call ran in an SDK worker that the pool started, not in the launcher.
    where = environment[slots.FOLDER_VARIABLE]
    holders = {slots.last_holder(n, where) for n in range(slots.count(0))} - {None}
    assert holders and all(parent == pool_pid and pid != launcher for pid, parent in holders), holders


def test_decoders_stay_within_the_bound_across_sdk_processes(tmp_path, bucket_root, prism, environment):
    """Two Prism jobs at once: two SDK processes, each with its bundles on threads, and one
    decoder at work on the machine at any time. Nothing fails for having waited. Each job has
    a pool of its own: two Prism instances name their workers alike, and one stopping its
    worker would stop the other's in a shared pool."""
    inputs = ["h264.mp4", "h264_faststart.mp4", "vp9.webm", "hevc10.mkv", "phone.mp4", "vfr.mp4", "long_gop.mp4"]
    runs = []
    with contextlib.ExitStack() as pools:
        for run in ("a", "b"):
            port, _ = pools.enter_context(worker_pool(tmp_path / f"pool-{run}.log", environment))
            manifest = tmp_path / f"{run}.jsonl"
            points = {"Time": 0, "Num": 3, "Interval": 1, "FrameType": "normal"}
            lines = [request_line(f"v/{video}", f"{run}/{video}/{{Count}}.jpg", **points) for video in inputs]
            manifest.write_text("\n".join(lines) + "\n")
            flags = on_prism(prism, port, "--max_decoders", "1", "--async_timeout", "60")
            runs.append(start(environment, manifest, tmp_path / run / "res", bucket_root, *flags))
        seen = sample_slots(runs, environment)
    for command in runs:
        out, err = command.communicate()
        assert command.returncode == 0, err
    records = [r for run in ("a", "b") for r in read_results(str(tmp_path / run / "res"))]
    assert [r["State"] for r in records] == ["Success"] * 2 * len(inputs)
    assert not [r for r in records if r["Code"] == errors.SNAPSHOT_TIMEOUT]
    assert max(len(held) for held in seen) == 1  # never more than the bound
    assert len({pid for held in seen for _, pid in held}) == 2  # the two SDK processes took turns
