"""The command imports only what its run uses (pipeline.startup): a run on this machine with
no gs:// path loads no Google Cloud client and no report machinery; any other imports Beam whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.helpers import ROOT, pipeline_args, request_line

# `python -m pipeline ARGS`, then the names of the modules it loaded, on the last line of stdout
COMMAND = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules))))
sys.argv[0] = "pipeline"
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""

CLOUD = ("google.cloud.storage", "google.cloud.bigquery", "google.cloud.pubsub", "google.cloud.dataflow")


def loaded(*args) -> tuple[int, set[str]]:
    """The command's exit code and the modules it loaded."""
    done = subprocess.run([sys.executable, "-c", COMMAND, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, set(json.loads(done.stdout.splitlines()[-1]))


def test_a_local_run_loads_no_cloud_client_nor_report(tmp_path, videos):
    (tmp_path / "in" / "v").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    shutil.copy(videos("h264.mp4"), tmp_path / "in" / "v" / "h264.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(request_line() + "\n")
    code, modules = loaded(*pipeline_args(manifest, tmp_path / "r" / "run", tmp_path))
    assert code == 0
    assert (tmp_path / "out" / "00001.jpg").exists()
    assert modules.isdisjoint(CLOUD + ("jinja2", "pipeline.report"))
    assert "apache_beam" in modules


def test_a_gs_path_imports_beam_whole(tmp_path):
    code, modules = loaded(*pipeline_args(tmp_path / "none.jsonl", "gs://results-bucket/run", tmp_path))
    assert code == 2  # no manifest: the run cannot start, after Beam's import
    assert {"google.cloud.storage", "apache_beam.io.gcp.gcsfilesystem"} <= modules


def test_another_runner_imports_beam_whole(tmp_path):
    args = pipeline_args(tmp_path / "none.jsonl", tmp_path / "run", tmp_path, "--runner", "DataflowRunner")
    code, modules = loaded(*args)
    assert code == 2
    assert {"google.cloud.storage", "google.cloud.dataflow"} <= modules
