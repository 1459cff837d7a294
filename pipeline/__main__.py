"""python -m pipeline --manifest PATH_OR_GLOB --results PREFIX [--bucket_root DIR] [Beam options]

Exit codes: 0 when every job succeeded; 3 when the run completed and some jobs failed (the
summary counts them by code); 1 when the run failed or a line has no result, and 2 when it
could not start (a wrong flag or runner, no manifest, an unwritable results folder, ...). On
1 and 2 one line on stderr says why; after 1 the details are in the log file that line names.
"""

from __future__ import annotations

from pipeline import startup  # first: the command's Beam import (pipeline.startup)

# isort: split
import gc
import json
import os
import re
import signal
import sys
from collections import Counter
from dataclasses import replace
from typing import cast

import apache_beam as beam
import fastavro
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions

from pipeline import accounting, delivery, flags, graph, local, options, runs
from pipeline.options import SnapshotOptions
from pipeline.progress import Progress
from pipeline.runlog import RunLog
from snapshot import errors, guarded, jobs
from snapshot.objects import Retry
from snapshot.results import State, load_schema
from snapshot.storage import Buckets
from snapshot.targets import Delivery, Targets, redact

STOPPED = "stopped: run the same command again to go on from the done parts"
# job ids derive from the manifest's file name, a line's text and its occurrence (snapshot/jobs.py)
NOTHING_CARRIED = (
    "no request of this manifest (same file name and text) succeeded there; a renamed manifest makes new jobs"
)


def parse_args(argv: list[str]) -> SnapshotOptions:
    """The command line as options: the pipeline's own (SnapshotOptions) and Beam's, with the
    local defaults. --help lists the pipeline's own."""
    parser = flags.Parser(
        prog="python -m pipeline",
        usage="%(prog)s --manifest PATH_OR_GLOB --results PREFIX [options] [Beam options]",
        description="Runs a manifest of SubmitSnapshotJob requests: one result record per line.",
        epilog="Any other flag goes to Beam (--runner, --project, ...). " + __doc__.split("\n\n")[1],
        allow_abbrev=False,
    )
    SnapshotOptions._add_argparse_args(parser)  # noqa: SLF001 - Beam's way to declare options
    argv = flags.plain_switches(argv, flags.switches(parser))  # as a Flex template passes them
    known, extra = parser.parse_known_args(argv)
    missing = [flag for flag in ("manifest", "results") if not getattr(known, flag)]
    own = sorted(name for name in parser._option_string_actions if name.startswith("--"))  # noqa: SLF001
    meant = flags.typos([arg.partition("=")[0] for arg in extra if arg.startswith("--")], own)
    if missing and meant:  # a typo (of a required flag, perhaps): say so, not only that one is missing
        parser.exit(2, f"error: {'; '.join(meant)}\n")
    if missing:
        parser.error("the following arguments are required: " + ", ".join(f"--{flag}" for flag in missing))
    return PipelineOptions(local.with_defaults(argv), save_main_session=False).view_as(SnapshotOptions)


def make_targets(args: SnapshotOptions) -> Targets:
    delivery = Delivery(attempts=max(1, args.notify_attempts), timeout_s=args.notify_timeout)
    return Targets.from_file(graph.default_messages_file(runs.absolute(args.results)), args.pipelines, delivery)


def make_buckets(args: SnapshotOptions) -> Buckets:
    retry = Retry(attempts=max(1, args.storage_retries), timeout_s=args.storage_timeout)
    return Buckets.from_files(args.bucket_root, args.bucket_map, args.roles, retry)


def check_run_can_happen(args: SnapshotOptions) -> str | None:
    """A one-line reason why the run cannot happen, or None."""
    try:
        matched = FileSystems.match([args.manifest])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - any failure to list means no manifest
        return f"cannot read the manifest {args.manifest}: {error}"
    if not matched:
        return f"no manifest matches {args.manifest}"
    array = accounting.json_array(args.manifest)
    if array:
        return f"{array} is a JSON array; the manifest is JSON Lines: one request object per line"
    if args.results.endswith(("/", os.sep)) or ("://" not in args.results and os.path.isdir(args.results)):
        example = os.path.join(args.results, "run1")
        return f"--results {args.results} is a folder; give a prefix such as {example}, which writes {example}-*.avro"
    if "://" not in args.results:
        folder = os.path.dirname(os.path.abspath(args.results))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            return f"cannot create the results folder {folder}: {error.strerror}"
        if not os.access(folder, os.W_OK):
            return f"the results folder {folder} is not writable"
    if "://" not in args.bucket_root and not os.path.isdir(args.bucket_root):
        return f"the bucket root {args.bucket_root} is not a folder"
    try:
        make_buckets(args)
        targets = make_targets(args)
    except (OSError, ValueError) as error:  # the message names the file
        return str(error)
    return target_problem(targets) or (resume_problem(args.resume) if args.resume else None)


def target_problem(targets: Targets) -> str | None:
    """Why a JSON Lines target cannot take messages, or None: one that is there must be a
    regular file (a FIFO with no reader would block the run)."""
    for target in targets.files():
        if "://" not in target and os.path.exists(target) and not os.path.isfile(target):
            return f"the notification target {redact(target)} is not a regular file"
    return None


def resume_problem(previous: str) -> str | None:
    """Why --resume PREVIOUS cannot be used, or None."""
    try:
        files = resume_files(previous)
    except Exception as error:  # noqa: BLE001 - any failure to list means no results
        return f"cannot read the results of --resume {previous}: {error}"
    if not files:
        return f"--resume {previous} matches no results ({previous}-SSSSS-of-NNNNN.avro)"
    try:
        with FileSystems.open(files[0]) as stream:
            schema = fastavro.reader(stream).writer_schema
    except Exception:  # noqa: BLE001 - not Avro at all
        schema = None
    expected = cast(dict, fastavro.parse_schema(load_schema()))
    names = [f["name"] for f in schema.get("fields", [])] if isinstance(schema, dict) else []
    known = [f["name"] for f in expected["fields"]]
    # An earlier version's results lack only the fields added since, which have defaults.
    if (
        not isinstance(schema, dict)
        or schema.get("name") != expected["name"]
        or not names
        or names != known[: len(names)]
    ):
        return f"{files[0]} is not a results file of this pipeline"
    return None


def main(argv: list[str] | None = None) -> int:
    flags.open_closed_streams()  # a closed stderr (2>&-) must not stop the run
    log = RunLog()  # first: Beam's PipelineOptions installs a handler of its own on a root without one
    try:
        args = parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    except SystemExit:  # --help, or a wrong command line
        log.close(keep=False)
        raise
    if "://" not in args.manifest:  # Beam cannot match a relative glob without a folder ('*.jsonl')
        args.manifest = os.path.abspath(args.manifest)
    ignored = flags.unknown(args)
    typos = "; ".join(flags.typos(ignored, sorted(f"--{name}" for name in args.get_all_options())))
    if ignored and not typos:
        print(f"warning: neither this pipeline nor Beam knows {', '.join(ignored)}: ignored", file=sys.stderr)
    reason = typos or flags.runner_problem(args.view_as(StandardOptions).runner) or check_run_can_happen(args)
    if reason:
        log.close(keep=False)
        print(f"error: {reason}", file=sys.stderr)
        return 2
    for missing in missing_buckets(args):
        print(f"warning: {missing}: the jobs that read from it will fail", file=sys.stderr)
    with log.capturing_stderr():  # until the end: Beam's worker threads may still print after a failure
        try:
            if args.view_as(TestOptions).dry_run or args.no_wait:
                outcome = submit(args)
                log.close(keep=False)
                if args.no_wait:
                    print(f"submitted: job {job_id(outcome)}; results will be in {args.results}-*.avro")
                else:
                    print(f"translated for Dataflow: {translated(outcome)}; nothing was submitted")
                return 0
            records, carried = launch(args, log.terminal)
        except KeyboardInterrupt:  # Ctrl-C: the run protocol kept the done parts (docs/operations.md)
            log.close(keep=False)
            print(STOPPED, file=log.terminal)
            return 130
        except runs.Held as held:
            log.close(keep=False)
            print(f"error: {held}; wait for it to end, or stop it", file=log.terminal)
            return 2
        except Exception as error:  # noqa: BLE001 - the run itself failed: one line here, the rest in the log
            if _STOP["asked"]:  # a Ctrl-C raised inside a step reaches here wrapped in Beam's error
                log.close(keep=False)
                print(STOPPED, file=log.terminal)
                return 130
            print(f"error: {failure(error)}; {log.keep(error)}", file=log.terminal)
            return 1
        internal = sum(r["Code"] == errors.INTERNAL_ERROR for r in records)
        path = log.close(keep=bool(internal))  # an InternalError's message sends the user to the log
        if internal:
            print(f"note: {jobs_count(internal)} failed with InternalError; details in {path}", file=log.terminal)
    lines = [f"{summary(records, carried)}; results in {args.results}-*.avro", *failures(records)]
    if args.resume and not carried:
        lines.insert(0, f"note: --resume {args.resume} carried nothing over: {NOTHING_CARRIED}")
    flags.print_out("\n".join(lines))
    return 0 if all(r["State"] == State.SUCCESS for r in records) else 3


def missing_buckets(args: SnapshotOptions) -> list[str]:
    """Why each local input bucket that the manifest names is not a folder (read cheaply,
    before a run on this machine: the jobs that read from it will fail)."""
    buckets = make_buckets(args)
    if not local.on_this_machine(args) or not buckets.any_local():
        return []
    named = {bucket for line in accounting.manifest_lines(args.manifest) if (bucket := jobs.input_bucket(line))}
    return [problem for bucket in sorted(named) if (problem := buckets.missing(bucket))]


def submit(args: SnapshotOptions):
    """A dry run, or a job submitted with --no_wait: the pipeline's result, not waited for. A
    --no_wait job writes PREFIX-*.avro itself, outside the run protocol
    (docs/operations.md#runs-and-their-results)."""
    if args.no_wait:
        runs.hand_over(args.results)
    p = beam.Pipeline(options=args)
    previous = resume_files(args.resume) if args.resume else None
    graph.build(p, args.manifest, args.results, make_buckets(args), make_targets(args), options.limits(args), previous)
    return p.run()


class RunFailed(Exception):
    """The run ended, but its results cannot be committed: the message says why."""


def failure(error: BaseException) -> str:
    if isinstance(error, (RunFailed, runs.LeaseLost)):
        return str(error)
    return f"the run failed ({cause(error)})"


def launch(args: SnapshotOptions, terminal=None) -> tuple[list[dict], int]:
    """Run the manifest as one transaction on the results prefix (pipeline.runs): its records'
    checked fields, and how many were carried over by --resume.

    A local run runs in parts of at most --lines_per_part lines, one pipeline after the other,
    and shows its progress on `terminal` unless --quiet; any other runner runs one part."""
    on_this_machine = local.on_this_machine(args)
    size = args.lines_per_part if on_this_machine else 0
    parts = runs.plan(accounting.manifest_lines(args.manifest), size, settings(args))
    run = runs.Run(args.results)
    try:
        run.start(parts)
        for note in run.notes:
            print(f"note: {note}", file=terminal or sys.stderr)
        previous = resume_files(args.resume) if args.resume else None
        earlier = successes(previous or [])  # read now: --resume may name this very prefix
        records = run_parts(args, run, parts, previous, terminal)
        now = runs.requests(accounting.manifest_lines(args.manifest))
        if now != [pair for part in parts for pair in part.lines]:
            raise RunFailed(accounting.unaccounted(now, records) or "the manifest changed during the run")
        run.commit([path for part in parts for path in run.shards[part.index]])
    except BaseException:
        run.end(failed=True)
        raise
    run.end(failed=False)
    adopted = {job_id for part in parts if part.index in run.adopted for _, job_id in part.lines}
    return records, sum(r["Id"] not in adopted and earlier.get(r["Id"]) == r["FinishTime"] for r in records)


def settings(args: SnapshotOptions) -> str:
    """What makes a part's results besides its lines: a stopped run's done part is adopted
    only when they are the same (the buckets, roles, targets and limits)."""
    buckets, targets = make_buckets(args), make_targets(args)
    return json.dumps(
        [buckets.root, buckets.bucket_map, buckets.roles, targets.pipelines, repr(options.limits(args))],
        sort_keys=True,
    )


def run_parts(
    args: SnapshotOptions, run: runs.Run, parts: list[runs.PlannedPart], previous: list[str] | None, terminal
) -> list[dict]:
    """Each part in turn: adopted from a stopped run, or run (carrying over the successes of
    the results files `previous`), checked and marked done; then its messages delivered. The
    checked fields of every record."""
    limits = options.limits(args)
    runner = local.runner(args) if local.is_local(args) else None
    if local.on_this_machine(args):
        local.keep_every_element()
    todo = [part for part in parts if part.index not in run.adopted]
    quiet = args.quiet or not local.on_this_machine(args)
    progress = None if quiet else Progress(sum(len(part.lines) for part in todo), terminal)
    decoders = guarded.shared_decoding_pool(limits) if runner is not None and limits.isolate else None
    if decoders is not None:  # the workers are in this process: their decoders start while Beam builds
        decoders.prestart(local.early_decoders(limits.max_decoders))
    targets, records = make_targets(args), []
    try:
        for planned in parts:
            adopted = run.adopted.get(planned.index)
            if adopted is None:
                if planned is not todo[0]:
                    gc.collect()  # the last part's runner and its buffers hold each other: let them go first
                    stop_if_asked()
                staged = replace(targets, staging=run.staging(planned))
                p = beam.Pipeline(runner=runner, options=args)
                graph.build(
                    p,
                    args.manifest,
                    run.part_prefix(planned),
                    make_buckets(args),
                    staged,
                    limits,
                    previous,
                    progress.path if progress else None,
                    planned.part,
                    spread=not local.in_process(args),
                )
                p.run().wait_until_finish()
                stop_if_asked()
                shards = runs.part_shards(run.folder, planned.name)
                found = accounting.checked_records(shards)
                problem = accounting.unaccounted(planned.lines, found)
                if problem:
                    raise RunFailed(problem)
                run.check()  # a run whose lease was taken over marks nothing done, delivers nothing
                runs.mark_done(run.folder, planned, shards)
                folder = run.folder
            else:
                folder, shards = adopted.folder, list(adopted.shards)
                found = accounting.checked_records(shards)
            run.check()
            failed = delivery.deliver(folder, planned.name, shards, replace(targets, staging=None))
            targets = replace(targets, down=targets.down | failed | down_targets(found, targets))
            run.shards[planned.index] = shards
            records += [{f: r[f] for f in ("Id", "Source", "State", "Code", "Message", "FinishTime")} for r in found]
        stop_if_asked()
        return records
    finally:
        if progress is not None:
            progress.close()
        if decoders is not None:
            decoders.release()


def down_targets(records: list[dict], targets: Targets) -> frozenset[str]:
    """The targets that went down in a part: every one of its messages there failed, at least
    as many as take a target down. Later parts do not try them again."""
    sent: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for record in records:
        target = targets.target(record["PipelineId"])
        if target and record["MNSMessageResult"]:
            (sent if record["MNSMessageResult"]["MessageId"] else failed)[target] += 1
    return frozenset(t for t, n in failed.items() if n >= targets.delivery.down_after and not sent[t])


def summary(records: list[dict], carried: int = 0) -> str:
    """'N jobs: S succeeded, F failed', or 'N jobs: C carried over, S succeeded, F failed'."""
    succeeded = sum(r["State"] == State.SUCCESS for r in records) - carried
    over = f"{carried} carried over, " if carried else ""
    return f"{jobs_count(len(records))}: {over}{succeeded} succeeded, {len(records) - carried - succeeded} failed"


def jobs_count(number: int) -> str:
    """'1 job', '2 jobs'."""
    return f"{number} job" if number == 1 else f"{number} jobs"


def failures(records: list[dict], width: int = 160) -> list[str]:
    """A line per error code, the most frequent first (then in manifest order): how many jobs
    failed with it, and the first such job's Source and Message, cut at `width` characters."""
    by_code: dict[str, list[dict]] = {}
    for record in records:
        if record["State"] != State.SUCCESS:
            by_code.setdefault(record["Code"], []).append(record)
    firsts = {code: min(failed, key=lambda r: source_order(r["Source"])) for code, failed in by_code.items()}
    lines = []
    for code in sorted(by_code, key=lambda code: (-len(by_code[code]), source_order(firsts[code]["Source"]))):
        first = firsts[code]
        line = f"  {code} x{len(by_code[code])}, e.g. {first['Source']}: {' '.join(first['Message'].split())}"
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return lines


def source_order(source: str) -> tuple[str, int]:
    """'m.jsonl:10' after 'm.jsonl:9'."""
    name, _, number = source.rpartition(":")
    return (name, int(number)) if number.isdigit() else (source, 0)


def successes(files: list[str]) -> dict[str, str]:
    """Job id -> FinishTime of the successes in some results files: a new record with the same
    is one carried over."""
    return {r["Id"]: r["FinishTime"] for r in accounting.checked_records(files) if r["State"] == State.SUCCESS}


def resume_files(previous: str) -> list[str]:
    """The results that --resume PREVIOUS carries over from: the prefix's committed results,
    and the done parts of a run of it that was stopped."""
    return runs.committed_files(previous) + [
        path for part in runs.done_parts(runs.run_folders(previous)).values() for path in part.shards
    ]


def translated(outcome) -> str:
    """What a dry run made: the job's name and the pipeline's steps."""
    pipeline = outcome.job.proto_pipeline
    transforms = pipeline.components.transforms
    steps = [
        transforms[child].unique_name
        for root in pipeline.root_transform_ids
        for child in transforms[root].subtransforms
    ]
    return f"job {outcome.job.proto.name} with {len(steps)} steps ({', '.join(steps)})"


def job_id(outcome) -> str:
    found = getattr(outcome, "job_id", None)
    return str(found() if callable(found) else found or getattr(outcome, "_job_id", "unknown"))


def cause(error: BaseException) -> str:
    """The innermost 'SomeError: message' line of an error that Beam wrapped, cut short."""
    found = re.findall(r"^(?:\w+\.)*\w+(?:Error|Exception): .*$", str(error), re.MULTILINE)
    text = found[-1] if found else f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return re.sub(r" \[while running .*", "", text)[:200]


_STOP = {"asked": False}


def on_ctrl_c(signum, frame) -> None:
    """Ctrl-C: noted, then raised. Python drops a KeyboardInterrupt raised in a finalizer (as
    gc.collect() runs them), so run_parts raises it again between its steps."""
    _STOP["asked"] = True
    raise KeyboardInterrupt


def stop_if_asked() -> None:
    if _STOP["asked"]:
        raise KeyboardInterrupt


def entry() -> int:
    """main(), where Ctrl-C before or after the run is one line too, not a traceback."""
    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        return main()
    except KeyboardInterrupt:
        print(STOPPED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    startup.imported()
    sys.exit(entry())
