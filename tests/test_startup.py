"""The command imports only what its run uses: a run on this machine with no gs:// path loads
no Google Cloud client (pipeline.startup); no run loads the report, and the command leaves
the decoder (PyAV, Pillow's plugins) to the decoding processes and the sending of messages
to a run that has some. Any other run imports Beam whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from PIL import Image

from snapshot import synth
from tests.helpers import ROOT, pipeline_args, request_line

# `python -m pipeline ARGS`, then on the last line of stdout the names of the modules it
# loaded, whether the cyclic garbage collector is on, and how many objects it leaves out
COMMAND = """
import atexit, gc, json, runpy, sys
atexit.register(lambda: print(json.dumps([sorted(sys.modules), gc.isenabled(), gc.get_freeze_count()])))
sys.argv[0] = "pipeline"
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""

CLOUD = ("google.cloud.storage", "google.cloud.bigquery", "google.cloud.pubsub", "google.cloud.dataflow")
REPORT = ("jinja2", "pipeline.report")
DECODER = ("av", "snapshot.media", "snapshot.color")
SENDING = ("snapshot.notify", "snapshot.webhook", "tenacity")


def loaded(*args) -> tuple[int, set[str]]:
    """The command's exit code and the modules it loaded."""
    code, modules, _collector = command(*args)
    return code, modules


def command(*args) -> tuple[int, set[str], tuple[bool, int]]:
    """The command's exit code, the modules it loaded, and its garbage collector at the end:
    whether it is on, and how many objects it leaves out."""
    done = subprocess.run([sys.executable, "-c", COMMAND, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    modules, enabled, frozen = json.loads(done.stdout.splitlines()[-1])
    return done.returncode, set(modules), (enabled, frozen)


def one_line_run(tmp_path, video: str, line: str) -> tuple[int, set[str], tuple[bool, int]]:
    """A run of a manifest of one line on `video` (in bucket `in` as v/h264.mp4) to bucket `out`."""
    (tmp_path / "in" / "v").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    shutil.copy(video, tmp_path / "in" / "v" / "h264.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(line + "\n")
    return command(*pipeline_args(manifest, tmp_path / "r" / "run", tmp_path))


def plugins(modules: set[str]) -> set[str]:
    """Pillow's format plugins among `modules` (PIL.JpegImagePlugin, ...)."""
    return {name for name in modules if name.startswith("PIL.") and name.endswith("ImagePlugin")}


def test_a_one_line_local_run_loads_no_cloud_client_report_decoder_or_sending(tmp_path, videos):
    code, modules, (collecting, frozen) = one_line_run(tmp_path, videos("h264.mp4"), request_line(Time=1000))
    assert code == 0
    assert collecting and frozen > 100_000  # the imports ran without the collector, which is on again
    with Image.open(tmp_path / "out" / "00001.jpg") as image:
        assert synth.read_index(image) == 30  # the frame at 1 s: captured in a decoding process
    assert "apache_beam" in modules and "snapshot.tasks" in modules
    assert sorted(modules & {*CLOUD, *REPORT, *DECODER, *SENDING}) == []
    assert not plugins(modules)


def test_a_run_with_a_message_loads_the_sending_and_sends_it(tmp_path, videos):
    line = {**json.loads(request_line(Time=1000)), "PipelineId": "p1", "UserData": "u"}
    code, modules, _collector = one_line_run(tmp_path, videos("h264.mp4"), json.dumps(line))
    assert code == 0
    assert {"snapshot.notify", "snapshot.webhook", "tenacity"} <= modules
    (message,) = [json.loads(text) for text in (tmp_path / "r" / "run-messages.jsonl").read_text().splitlines()]
    assert (message["State"], message["UserData"]) == ("Success", "u")
    assert modules.isdisjoint(DECODER) and not plugins(modules)


def test_a_gs_path_imports_beam_whole(tmp_path):
    code, modules = loaded(*pipeline_args(tmp_path / "none.jsonl", "gs://results-bucket/run", tmp_path))
    assert code == 2  # no manifest: the run cannot start, after Beam's import
    assert {"google.cloud.storage", "apache_beam.io.gcp.gcsfilesystem"} <= modules


def test_another_runner_imports_beam_whole(tmp_path):
    args = pipeline_args(tmp_path / "none.jsonl", tmp_path / "run", tmp_path, "--runner", "DataflowRunner")
    code, modules = loaded(*args)
    assert code == 2
    assert {"google.cloud.storage", "google.cloud.dataflow"} <= modules
