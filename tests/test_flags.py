"""Both spellings of every flag, on every command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import __main__ as main_command
from pipeline import flags, submit
from pipeline.options import SnapshotOptions


def test_names_get_underscores_and_values_do_not():
    argv = ["--async-timeout", "5", "--user-data=a-b--c", "-x", "--", "--not-a-flag"]
    assert flags.canonical(argv) == ["--async_timeout", "5", "--user_data=a-b--c", "-x", "--", "--not-a-flag"]


def test_a_switch_given_true_or_false_is_the_switch_or_nothing_and_other_flags_keep_their_values():
    argv = ["--quiet=true", "--no_wait=False", "--dry_run=True", "--quiet=yes", "--", "--quiet=true"]
    assert flags.plain_switches(argv, {"quiet", "no_wait"}) == [
        "--quiet",
        "--dry_run=True",
        "--quiet=yes",
        "--",
        "--quiet=true",
    ]


def test_the_main_command_reads_hyphens_and_underscores_alike():
    hyphens = main_command.parse_args(flags.canonical(["--manifest", "m", "--results", "r", "--bucket-root", "b"]))
    underscores = main_command.parse_args(["--manifest", "m", "--results", "r", "--bucket_root", "b"])
    assert hyphens.view_as(SnapshotOptions).bucket_root == underscores.view_as(SnapshotOptions).bucket_root
    assert hyphens.view_as(SnapshotOptions).bucket_root.endswith("b")


def test_submit_reads_hyphens_and_underscores_alike():
    common = ["--input", "{}", "--config", "{}"]
    hyphens = submit.parse_args([*common, "--pipeline-id", "p", "--user-data", "u", "--async-timeout", "7"])
    underscores = submit.parse_args([*common, "--pipeline_id", "p", "--user_data", "u", "--async_timeout", "7"])
    assert vars(hyphens) == vars(underscores)
    assert (hyphens.pipeline_id, hyphens.user_data, hyphens.async_timeout) == ("p", "u", 7)


def test_a_flag_nobody_knows_is_named():
    options = PipelineOptions(["--manifest", "m", "--bucket_rot", "b", "--direct_num_workers", "2"])
    assert flags.unknown(options) == ["--bucket_rot"]


@pytest.mark.slow
def test_the_main_command_warns_about_a_flag_nobody_knows(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--manifest",
            str(tmp_path / "none.jsonl"),
            "--results",
            str(tmp_path / "r"),
            "--bucket-rot",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "--bucket_rot" in done.stderr and "ignored" in done.stderr
    assert done.returncode == 2  # and the missing manifest is still refused
