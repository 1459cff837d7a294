"""The scripts a new user runs first: the set-up says what it does, and run_local.sh passes
on the run's exit code but not the failures the example makes on purpose."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Stands in for python3 and for the venv's python: `-m venv DIR` makes DIR/bin/python (this
# script), `-m pipeline` exits $PIPELINE_EXIT, anything else says what it was asked.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$CALLS"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
if [ "$1 $2" = "-m pipeline" ]; then exit "$PIPELINE_EXIT"; fi
if [ "$1 $2" = "-m pipeline.show" ]; then echo "the table"; fi
exit 0
"""


@pytest.fixture
def clone(tmp_path) -> Path:
    """The scripts and the project files they look at, in a fresh folder, with a fake Python."""
    folder = tmp_path / "clone"
    (folder / "scripts").mkdir(parents=True)
    for name in ("run_local.sh", "scripts/venv.sh", "pyproject.toml", "setup.py"):
        shutil.copy(Path(ROOT) / name, folder / name)
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return folder


def run(clone: Path, script: str, pipeline_exit: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": str(clone.parent / "python3"), "CALLS": str(clone.parent / "calls")}
    env["PIPELINE_EXIT"] = str(pipeline_exit)
    return subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=60)


def test_the_first_set_up_says_what_it_installs_and_about_how_long(clone):
    first = run(clone, "source scripts/venv.sh")
    assert first.returncode == 0, first.stderr
    (line,) = first.stderr.splitlines()
    assert "./.venv" in line and "Apache Beam" in line and "1.1 GB" in line and "minutes" in line
    calls = (clone.parent / "calls").read_text()
    assert calls.index("-m venv") < calls.index("pip install --quiet -e")
    assert run(clone, "source scripts/venv.sh").stderr == ""  # installed: nothing to say
    os.utime(clone / "pyproject.toml", (2e9, 2e9))
    assert "changed: updating ./.venv" in run(clone, "source scripts/venv.sh").stderr


@pytest.mark.parametrize(
    ("pipeline_exit", "script_exit", "table"), [(0, 0, True), (3, 0, True), (1, 1, False), (2, 2, False)]
)
def test_run_local_prints_the_table_when_only_jobs_failed_and_passes_on_a_failed_run(
    clone, pipeline_exit, script_exit, table
):
    done = run(clone, "./run_local.sh", pipeline_exit)
    assert done.returncode == script_exit, done.stderr
    assert ("the table" in done.stdout) == table
