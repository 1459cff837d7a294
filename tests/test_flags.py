"""Both spellings of every flag, on every command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import __main__ as main_command
from pipeline import flags, flex_template, options, submit
from pipeline.options import SnapshotOptions
from snapshot import targets


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
def test_the_main_command_refuses_a_typo_and_warns_about_a_flag_nobody_knows(tmp_path):
    def command(*extra: str) -> subprocess.CompletedProcess:
        argv = ["--manifest", str(tmp_path / "none.jsonl"), "--results", str(tmp_path / "r"), *extra]
        return subprocess.run([sys.executable, "-m", "pipeline", *argv], capture_output=True, text=True, timeout=120)

    typo = command("--bucket-rot", "x")
    assert (typo.returncode, typo.stderr) == (2, "error: --bucket_rot: did you mean --bucket_root?\n")
    far = command("--frobnicate", "x")
    assert "--frobnicate" in far.stderr and "ignored" in far.stderr
    assert far.returncode == 2  # and the missing manifest is still refused


def main_of(argv: list[str], capfd) -> tuple[int, str]:
    """The main command run in this process: its exit code and its stderr."""
    try:
        code = main_command.main(argv)
    except SystemExit as exit:
        code = exit.code
    return code, capfd.readouterr().err


@pytest.fixture
def manifest(tmp_path):
    (tmp_path / "m.jsonl").write_text("{}\n")
    (tmp_path / "buckets").mkdir()
    return ["--manifest", str(tmp_path / "m.jsonl"), "--bucket_root", str(tmp_path / "buckets")]


def test_a_typo_of_a_flag_is_refused_with_the_flag_meant_and_beams_own_flags_pass(tmp_path, manifest, capfd):
    code, err = main_of([*manifest, "--results", str(tmp_path / "r"), "--bucket_rot", "x"], capfd)
    assert (code, err) == (2, "error: --bucket_rot: did you mean --bucket_root?\n")
    beams = ["--direct_num_workers", "2", "--job_endpoint", "embed", "--temp_location", "/tmp", "--project", "p"]
    options = main_command.parse_args([*manifest, "--results", "r", *beams])
    assert flags.unknown(options) == []
    known = sorted(f"--{name}" for name in options.get_all_options())
    assert flags.typos(["--notify_atempts", "--frobnicate"], known) == [
        "--notify_atempts: did you mean --notify_attempts?"
    ]


def test_a_typo_of_a_required_flag_is_named_before_the_flag_is_said_to_be_missing(tmp_path, capfd):
    code, err = main_of(["--manfest", "mine.jsonl", "--results", str(tmp_path / "r")], capfd)
    assert (code, err) == (2, "error: --manfest: did you mean --manifest?\n")


def test_an_unknown_runner_cannot_start_and_the_line_lists_every_runner(tmp_path, manifest, capfd):
    code, err = main_of([*manifest, "--results", str(tmp_path / "r"), "--runner", "DirectRuner"], capfd)
    (line,) = err.splitlines()
    assert code == 2 and line.startswith("error: unknown runner DirectRuner (did you mean DirectRunner?); ")
    assert line.endswith(", TestDirectRunner, TestDataflowRunner, or a runner's full class name (module.Class)")
    for known in ("DirectRunner", "directrunner", "Direct", "FnApiRunner", "my.module.Runner", None):
        assert flags.runner_problem(known) is None


@pytest.mark.parametrize("flag", ["--sync_timeout", "--async_timeout", "--notify_timeout", "--storage_timeout"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "five"])
def test_a_bad_number_cannot_start_in_one_line(tmp_path, manifest, capfd, flag, value):
    code, err = main_of([*manifest, "--results", str(tmp_path / "r"), flag, value], capfd)
    (line,) = err.splitlines()
    assert code == 2 and line.startswith(f"python -m pipeline: error: argument {flag}: {value!r} ")


@pytest.mark.parametrize(
    ("flag", "value"), [("--notify_attempts", "0"), ("--max_points", "-3"), ("--lines_per_part", "x")]
)
def test_a_bad_count_cannot_start_in_one_line(tmp_path, manifest, capfd, flag, value):
    code, err = main_of([*manifest, "--results", str(tmp_path / "r"), flag, value], capfd)
    assert code == 2 and len(err.splitlines()) == 1 and flag in err


@pytest.mark.parametrize(
    ("flag", "value", "why"),
    [
        ("--sync_timeout", "99999999999999999999", "a number above 0 and at most 604,800"),
        ("--async_timeout", "1e10", "a number above 0 and at most 604,800"),
        ("--storage_timeout", "604800.5", "a number above 0 and at most 604,800"),
        ("--decoder_threads", "100000", "a whole number from 1 to 64"),
        ("--decoder_threads", "0", "a whole number from 1 to 64"),
        ("--decoder_memory_mb", "1048577", "a whole number from 0 to 1,048,576"),
        ("--max_input_pixels", "268435457", "a whole number from 1 to 268,435,456"),
        ("--max_decoders", "1025", "a whole number from 0 to 1,024"),
        ("--notify_attempts", "-1", "a whole number from 1 to 100"),
        ("--lines_per_part", "-1", "a whole number from 0 to 1,000,000,000"),
    ],
)
def test_a_number_past_its_range_cannot_start_and_the_line_names_the_range(tmp_path, manifest, capfd, flag, value, why):
    code, err = main_of([*manifest, "--results", str(tmp_path / "r"), flag, value], capfd)
    assert (code, err) == (2, f"python -m pipeline: error: argument {flag}: {value!r} must be {why} (see --help)\n")


def test_every_number_flag_takes_its_largest_value_and_refuses_the_next(tmp_path, manifest, capfd):
    parser = flex_template.options_parser()
    checked = {a.option_strings[0]: a.type for a in parser._actions if isinstance(a.type, flags.Number)}
    assert set(checked) >= {f"--{name}" for name in options.LIMIT_FLAGS} | {"--max_decoders", "--storage_retries"}
    for flag, number in checked.items():
        largest = f"{number.high:d}" if isinstance(number.high, int) else f"{number.high}"
        parsed = main_command.parse_args([*manifest, "--results", "r", flag, largest])
        assert getattr(parsed.view_as(SnapshotOptions), flag[2:]) == number.high
        code, err = main_of([*manifest, "--results", str(tmp_path / "r"), flag, str(number.high + 1)], capfd)
        assert code == 2 and (f"at most {number.high:,}" in err or f"to {number.high:,}" in err), err
    for flag in ("--sync_timeout", "--async_timeout"):
        with pytest.raises(SystemExit):
            submit.parse_args(["--input", "{}", "--config", "{}", flag, "604801"])
        assert "must be a number above 0 and at most 604,800" in capfd.readouterr().err


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_the_sync_command_refuses_a_bad_time_limit_in_one_line(value, capfd):
    for flag in ("--sync_timeout", "--timeout", "--async_timeout"):
        with pytest.raises(SystemExit) as exit:
            submit.parse_args(["--input", "{}", "--config", "{}", flag, value])
        assert exit.value.code == 2 and len(capfd.readouterr().err.splitlines()) == 1


def test_a_results_prefix_that_is_a_folder_cannot_start(tmp_path, manifest, capfd):
    (tmp_path / "outdir").mkdir()
    for results in (f"{tmp_path / 'outdir'}/", str(tmp_path / "outdir"), f"{tmp_path / 'new'}/"):
        code, err = main_of([*manifest, "--results", results], capfd)
        assert code == 2 and f"--results {results} is a folder; give a prefix such as " in err
    assert not list((tmp_path / "outdir").iterdir()) and not (tmp_path / "new").exists()


def test_the_sync_command_has_the_mains_names_and_suggests_the_flag_meant(capfd):
    common = ["--input", "{}", "--config", "{}"]
    assert submit.parse_args([*common, "--sync_timeout", "2.5"]).sync_timeout == 2.5
    assert submit.parse_args([*common, "--timeout", "3"]).sync_timeout == 3  # the old name, hidden
    with pytest.raises(SystemExit) as exit:
        submit.parse_args([*common, "--sync_timout", "3"])
    assert exit.value.code == 2
    assert capfd.readouterr().err.splitlines() == [
        "python -m pipeline.submit: error: --sync_timout: did you mean --sync_timeout? (see --help)"
    ]


def help_of(module: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    return done.stdout


def test_every_flag_says_what_it_means_and_the_required_ones_are_shown_required():
    for module, required in [("pipeline", ["--manifest", "--results"]), ("pipeline.submit", ["--input", "--config"])]:
        text = help_of(module)
        assert "limit (default" not in text
        group = text[text.index("\nrequired:\n") :].split("\n\n")[0]
        assert all(f"  {flag} " in group for flag in required), group
        assert f"usage: python -m {module} {required[0]} " in text
    main_help = help_of("pipeline")
    for flag in options.LIMIT_FLAGS:
        assert f"--{flag} " in main_help
    assert "--sync_timeout SECONDS" in main_help and "--decoder_memory_mb MB" in main_help
    assert "--max_input_pixels PIXELS" in main_help and "3 when the run completed and some jobs failed" in main_help
    submit_help = help_of("pipeline.submit")
    assert "--sync_timeout SECONDS" in submit_help and "--timeout" not in submit_help


def test_the_summary_counts_one_job_in_the_singular():
    record = {"State": "Success"}
    assert main_command.summary([record]) == "1 job: 1 succeeded, 0 failed"
    assert main_command.summary([record, record], carried=1) == "2 jobs: 1 carried over, 1 succeeded, 0 failed"


def test_a_file_that_cannot_be_read_is_named_and_a_jsonl_target_is_read_in_any_case(tmp_path, manifest, capfd):
    (tmp_path / "broken.json").write_text('{"a": 1')
    (tmp_path / "pipelines.json").write_text('{"p": "out/M.JSONL"}')
    results = ["--results", str(tmp_path / "r")]
    for flag, what in [("--bucket_map", "bucket map"), ("--roles", "roles"), ("--pipelines", "pipelines")]:
        for name, why in [("broken.json", "Expecting ',' delimiter"), ("none.json", "No such file or directory")]:
            code, err = main_of([*manifest, *results, flag, str(tmp_path / name)], capfd)
            assert (code, err.partition(why)[0]) == (2, f"error: cannot read the {what} file {tmp_path / name}: ")
    for wrong in (
        {"media": "gs://"},
        {"media": ""},
        {"media": 3},
        {"media": "gs:///x"},
        {"media": "gs://-"},
        {"media": "gs://bkt//c"},
    ):
        (tmp_path / "map.json").write_text(json.dumps(wrong))
        code, err = main_of([*manifest, *results, "--bucket_map", str(tmp_path / "map.json")], capfd)
        assert (code, err.partition(" to ")[0]) == (2, f"error: the bucket map {tmp_path / 'map.json'} maps 'media'")
    code, err = main_of([*manifest, *results, "--pipelines", str(tmp_path / "pipelines.json"), "--dry_run"], capfd)
    assert "notification target" not in err
    assert targets.kind("out/M.JSONL") is targets.TargetKind.FILE
