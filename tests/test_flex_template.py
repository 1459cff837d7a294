"""The Dataflow Flex Template: metadata.json made from the pipeline's own flags, read the way
the template's launcher passes them, and a Dockerfile whose entry runs the command."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import __main__ as command
from pipeline import flags, flex_template
from pipeline.options import SnapshotOptions
from tests.helpers import ROOT

REPO = Path(ROOT)


def sample(checked, name: str) -> str:
    """A value of a flag of this type, as the launcher passes it: text."""
    if isinstance(checked, flags.Number):
        return "7" if checked.whole else "2.5"
    return f"{name}-x"


def command_help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        command.parse_args(["--help"])
    return out.getvalue()


def words(text: str) -> str:
    return " ".join(text.split())


def test_the_committed_metadata_is_the_generated_one():
    committed = json.loads((REPO / "metadata.json").read_text())
    assert committed == flex_template.metadata(), "regenerate: python -m pipeline.flex_template > metadata.json"


def test_every_flag_of_the_command_is_a_parameter_with_its_help_text_and_nothing_else():
    parameters = flex_template.metadata()["parameters"]
    shown = command_help()
    options_part = shown[shown.index("options:") :]
    flags = set(re.findall(r"^\s+--(\w+)", options_part, flags=re.M)) - {"help"}
    names = [p["name"] for p in parameters]
    assert len(names) == len(set(names)) and set(names) == flags
    for p in parameters:
        assert p["helpText"] and words(p["helpText"]) in words(options_part), p["name"]
        assert p["label"]


def test_the_flags_the_command_requires_are_the_parameters_that_are_not_optional():
    parameters = flex_template.metadata()["parameters"]
    needed = [p["name"] for p in parameters if not p["isOptional"]]
    assert {"manifest", "results"} <= set(needed)
    command.parse_args([f"--{name}=x" for name in needed])
    for left_out in needed:
        with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
            command.parse_args([f"--{name}=x" for name in needed if name != left_out])


def test_every_parameter_is_read_as_the_launcher_passes_it():
    """The launcher passes `--name=value` for each parameter given, a switch as true or false."""
    parser = flex_template.options_parser()
    actions = {a.option_strings[0][2:]: a for a in parser._actions}
    parameters = flex_template.metadata()["parameters"]
    for switch in ("true", "false", "True"):
        values = {}
        for p in parameters:
            action = actions[p["name"]]
            values[p["name"]] = switch if action.nargs == 0 else sample(action.type, p["name"])
            assert all(re.match(r, values[p["name"]]) for r in p.get("regexes", [])), p
        options = command.parse_args([f"--{n}={v}" for n, v in values.items()]).view_as(SnapshotOptions)
        for name, value in values.items():
            action = actions[name]
            want = (value.lower() == "true") if action.nargs == 0 else (action.type or str)(value)
            assert getattr(options, name) == want, name
    assert any(actions[p["name"]].nargs == 0 for p in parameters)  # the switches were tried


def test_a_value_that_is_neither_true_nor_false_is_refused_for_a_switch():
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        command.parse_args(["--manifest=m", "--results=r", "--quiet=yes"])


def test_the_dockerfile_installs_the_package_and_its_entry_runs_the_command(tmp_path):
    dockerfile = (REPO / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert base.startswith("gcr.io/dataflow-templates-base/python")
    assert f"python{sys.version_info.major}{sys.version_info.minor}-template-launcher-base" in base
    copied = {name for line in re.findall(r"^COPY (.+)", dockerfile, flags=re.M) for name in line.split()[:-1]}
    assert {"pyproject.toml", "setup.py", "README.md", "snapshot", "pipeline", "transforms"} <= copied
    assert re.search(r"pip install --no-cache-dir \"\.\[dataflow\]\"", dockerfile)
    assert "apt-get" not in dockerfile  # a pip install brings everything
    env = dict(re.findall(r"^ENV (\w+)=(\S+)", dockerfile, flags=re.M))
    assert env["FLEX_TEMPLATE_PYTHON_SETUP_FILE"] == "/template/setup.py"
    # the entry file the launcher runs, written as the Dockerfile writes it
    (code,) = re.findall(r"printf '([^']*)' > launch\.py", dockerfile)
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "/template/launch.py"
    (tmp_path / "launch.py").write_text(code.replace("\\n", "\n"))
    done = subprocess.run(
        [sys.executable, "launch.py", "--manifest=m.jsonl", "--results=r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr  # the command itself, refusing a manifest that is not there
    assert done.stderr == f"error: no manifest matches {tmp_path / 'm.jsonl'}\n"
