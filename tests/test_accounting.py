"""Nothing is lost silently: the local runner's default mode keeps large elements, and the
command checks every line against the results whatever the runner did."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane

from pipeline import __main__ as command
from pipeline import accounting, local, runs
from pipeline.show import read_results
from tests.helpers import ROOT, pipeline_args, pipeline_command, request_line

pytestmark = pytest.mark.slow  # whole runs of the command, under a pseudo-terminal


def _count(keyed):
    Metrics.counter("test", "elements").inc(len(list(keyed[1])))


def large_elements_arrive(runs: int = 10) -> list[int]:
    """Beam alone: 250 tuples of 108,000 ints (about 500 KB each pickled) through a Reshuffle
    and a GroupByKey, counted at the end; on Beam 2.77's own threaded mode some go missing."""
    counts = []
    for _ in range(runs):
        options = PipelineOptions(["--direct_num_workers", "2"])
        p = beam.Pipeline(runner=local.runner(options), options=options)
        (
            p
            | beam.Create([0])
            | beam.FlatMap(lambda _: ((k, tuple(range(108_000))) for k in range(250)))
            | beam.Reshuffle()
            | beam.Map(lambda kv: (0, kv[0]))
            | beam.GroupByKey()
            | beam.Map(_count)
        )
        outcome = p.run()
        outcome.wait_until_finish()
        counts.append(sum(c.committed for c in outcome.metrics().query()["counters"]))
    return counts


def test_the_local_default_mode_never_loses_large_elements():
    assert large_elements_arrive() == [250] * 10


def test_the_runner_side_of_local_channels_flushes_only_between_elements(tmp_path, bucket_root, monkeypatch):
    """The runner sends each bundle's input over a stream with the same racing timer; 100,000
    lines with multi_processing lost capture outcomes through it. A local run turns it off."""
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1000)  # Beam's own value, for this test
    servicer = data_plane.BeamFnDataServicer(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    timed = servicer.get_conn_by_worker_id("w").output_stream("i", "t")
    assert isinstance(timed, data_plane.TimeBasedBufferingClosableOutputStream)  # Beam's default
    timed.close()
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    argv = pipeline_args(tmp_path / "m.jsonl", tmp_path / "r", bucket_root)
    assert command.main([*argv, "--quiet", "--direct_running_mode", "multi_processing"]) == 0
    servicer = data_plane.BeamFnDataServicer(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    stream = servicer.get_conn_by_worker_id("w").output_stream("i", "t")
    assert not isinstance(stream, data_plane.TimeBasedBufferingClosableOutputStream)  # size-based: no timer


def test_the_local_default_is_one_worker_in_process_with_no_data_channel():
    from apache_beam.transforms.environments import EmbeddedPythonEnvironment, EmbeddedPythonGrpcEnvironment

    options = PipelineOptions(local.with_defaults([]))
    default = local.runner(options)
    assert local.workers(options) == 1 and local.in_process(options)
    assert type(default._default_environment) is EmbeddedPythonEnvironment  # data passed in memory
    threads = PipelineOptions(local.with_defaults(["--direct_num_workers", "0"]))
    assert isinstance(local.runner(threads)._default_environment, EmbeddedPythonGrpcEnvironment)
    assert local.workers(threads) == os.cpu_count() and not local.in_process(threads)
    assert local.is_local(PipelineOptions(["--runner", "FnApiRunner", "--direct_running_mode", "multi_threading"]))
    assert not local.is_local(PipelineOptions(["--direct_running_mode", "multi_processing"]))


def run_dropping_line_2(*args: str) -> subprocess.CompletedProcess:
    """The command, with a runner that loses line 2 of the manifest (a stand-in for Beam's bug)."""
    code = """
import sys, apache_beam as beam
from pipeline import __main__ as command, graph
from transforms.manifest import ReadManifest

class Lossy(ReadManifest):
    def expand(self, pbegin):
        return super().expand(pbegin) | beam.Filter(lambda line: line.number != 2)

graph.ReadManifest = Lossy
sys.exit(command.main(sys.argv[1:]))
"""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_lost_line_fails_the_command_naming_it(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text("\n".join([request_line(), "oops", "", request_line(Width=64)]) + "\n")
    done = run_dropping_line_2(
        "--manifest", str(tmp_path / "m.jsonl"), "--results", str(tmp_path / "res"), "--bucket_root", str(bucket_root)
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: 1 of 3 lines have no result (m.jsonl:2): the runner lost them; details in ")


def test_results_are_counted_against_the_manifest(tmp_path, bucket_root):
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline import graph
    from snapshot.storage import Buckets

    (tmp_path / "m.jsonl").write_bytes(b"\xef\xbb\xbfoops\n\n[]\n")
    with TestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)))

    def lines():
        return runs.plan(accounting.manifest_lines(str(tmp_path / "m.jsonl")), 0)[0].lines

    assert accounting.unaccounted(lines(), read_results(str(tmp_path / "res"))) is None
    with open(tmp_path / "m.jsonl", "a") as manifest:
        manifest.write("late\n")
    assert (
        accounting.unaccounted(lines(), read_results(str(tmp_path / "res")))
        == "1 of 3 lines have no result (m.jsonl:4): the runner lost them"
    )


def test_a_full_disk_for_the_results_gives_one_line_and_leaves_no_debris(tmp_path, bucket_root):
    """The command may write files of 50,000 bytes at most (RLIMIT_FSIZE): the results are larger."""
    lines = ['{"UserData": "' + os.urandom(500).hex() + '", "Input": 1}' for _ in range(200)]  # incompressible
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "out").mkdir()
    done = subprocess.run(
        pipeline_command(
            str(tmp_path / "m.jsonl"), str(tmp_path / "out" / "res"), str(bucket_root), max_file_bytes=50_000
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    (message,) = done.stderr.strip().splitlines()
    assert message.startswith("error: the run failed (") and "File too large" in message, message
    log = message.rsplit("details in ", 1)[1]
    assert "Traceback" in Path(log).read_text()
    os.unlink(log)
    assert os.listdir(tmp_path / "out") == []  # no beam-temp-* folder, no partial results


@pytest.mark.parametrize("mode", [[], ["--direct_running_mode", "multi_processing"]])
def test_a_local_run_on_a_terminal_shows_its_progress(tmp_path, bucket_root, mode):
    """The command under a pseudo-terminal: tqdm's line reaches N/N."""
    import pty

    lines = [request_line(output=f"p/{n}.jpg", Time=100 * n, FrameType="normal") for n in range(12)] + ["oops"]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    leader, follower = pty.openpty()
    run = subprocess.Popen(
        pipeline_command(str(tmp_path / "m.jsonl"), str(tmp_path / "res"), str(bucket_root), *mode),
        cwd=ROOT,
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert run.wait(timeout=300) == 3  # the line "oops" failed
    os.close(leader)
    text = shown.decode(errors="replace")
    assert "13/13" in text and "12 images, 1 failed" in text, text[-2000:]


def test_without_a_terminal_the_progress_is_a_plain_line(tmp_path, bucket_root):
    import io

    from pipeline.progress import Progress
    from transforms.results import tell

    out = io.StringIO()
    progress = Progress(3, out, plain_every_s=0.05)
    for failed, images in ((False, 2), (True, 0), (False, 1)):
        tell(progress.path, failed, images)
    time.sleep(0.3)
    progress.close()
    assert out.getvalue().splitlines()[-1].startswith("progress: 3/3 jobs, 3 images, 1 failed, ")


def test_a_run_with_an_internal_error_keeps_its_log_and_names_it(tmp_path, bucket_root):
    """The job's message sends the user to the log: a run that completes keeps it then."""
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    done = subprocess.run(
        pipeline_command(tmp_path / "m.jsonl", tmp_path / "res", bucket_root, "--quiet", "--decoder_memory_mb", "64"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3 and "1 job: 0 succeeded, 1 failed" in done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("note: 1 job failed with InternalError; details in ")
    log = Path(line.rsplit("details in ", 1)[1])
    assert "MemoryError" in log.read_text()  # why the decoding process did not start
    log.unlink()
