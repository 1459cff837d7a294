"""python -m pipeline --manifest PATH_OR_GLOB --results PREFIX [--bucket_root DIR] [Beam options]

Exits 0 when every job got its result, good or bad. Otherwise one line on stderr says why:
exit 2 when the run cannot start (no manifest, an unwritable results folder, ...), and 1 when
it failed or a line has no result; the details are then in the log file that line names.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import os
import posixpath
import re
import shutil
import sys
from typing import cast

import apache_beam as beam
import fastavro
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, TestOptions

from pipeline import accounting, flags, graph, local, options, parts
from pipeline.options import SnapshotOptions
from pipeline.progress import Progress
from pipeline.runlog import RunLog
from pipeline.show import result_files, results_of
from snapshot import guarded
from snapshot.notify import Delivery, Targets
from snapshot.objects import Retry
from snapshot.parts import split
from snapshot.results import State, load_schema
from snapshot.storage import Buckets

# What the checks after a run keep of each record: a whole one takes about 3 KB of memory.
CHECKED = ("Id", "Source", "State", "FinishTime")


def parse_args(argv: list[str]) -> SnapshotOptions:
    """The command line as options: the pipeline's own (SnapshotOptions) and Beam's, with the
    local defaults. --help lists the pipeline's own."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description=__doc__.splitlines()[0],
        epilog="Any other flag goes to Beam (--runner, --project, ...).",
    )
    SnapshotOptions._add_argparse_args(parser)  # noqa: SLF001 - Beam's way to declare options
    known, _ = parser.parse_known_args(argv)
    missing = [flag for flag in ("manifest", "results") if not getattr(known, flag)]
    if missing:
        parser.error("the following arguments are required: " + ", ".join(f"--{flag}" for flag in missing))
    return PipelineOptions(local.with_defaults(argv), save_main_session=False).view_as(SnapshotOptions)


def make_targets(args: SnapshotOptions) -> Targets:
    delivery = Delivery(attempts=max(1, args.notify_attempts), timeout_s=args.notify_timeout)
    return Targets.from_file(graph.default_messages_file(args.results), args.pipelines, delivery)


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
        make_targets(args)
    except (OSError, ValueError) as error:
        return f"cannot read the bucket map, roles or pipelines file: {error}"
    return resume_problem(args.resume, args.results) if args.resume else None


def resume_problem(previous: str, results: str) -> str | None:
    """Why --resume PREVIOUS cannot be used, or None."""
    if _same_place(previous, results):
        return f"--resume {previous} is --results itself; name the earlier run's prefix"
    try:
        files = result_files(previous)
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


def _same_place(a: str, b: str) -> bool:
    return (a if "://" in a else os.path.abspath(a)) == (b if "://" in b else os.path.abspath(b))


def main(argv: list[str] | None = None) -> int:
    log = RunLog()  # first: Beam's PipelineOptions installs a handler of its own on a root without one
    try:
        args = parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    except SystemExit:  # --help, or a wrong command line
        log.close(keep=False)
        raise
    ignored = flags.unknown(args)
    if ignored:
        print(f"warning: neither this pipeline nor Beam knows {', '.join(ignored)}: ignored", file=sys.stderr)
    reason = check_run_can_happen(args)
    if reason:
        log.close(keep=False)
        print(f"error: {reason}", file=sys.stderr)
        return 2
    with log.capturing_stderr():  # until the end: Beam's worker threads may still print after a failure
        try:
            outcome = launch(args, log.terminal)
            if args.view_as(TestOptions).dry_run:
                log.close(keep=False)
                print(f"translated for Dataflow: {translated(outcome)}; nothing was submitted")
                return 0
            if args.no_wait:
                log.close(keep=False)
                print(f"submitted: job {job_id(outcome)}; results will be in {args.results}-*.avro")
                return 0
            records = [{field: r[field] for field in CHECKED} for r in results_of(args.results)]
            lost = accounting.unaccounted(args.manifest, records)
            carried = carried_over(args.resume, records) if args.resume else 0
        except Exception as error:  # noqa: BLE001 - the run itself failed: one line here, the rest in the log
            log.add_traceback(error)
            remove_temporary_results(args.results)
            print(f"error: the run failed ({cause(error)}); details in {log.close(keep=True)}", file=log.terminal)
            return 1
        path = log.close(keep=bool(lost))
        if lost:
            print(f"error: {lost}; details in {path}", file=log.terminal)
            return 1
    print(f"{summary(records, carried)}; results in {args.results}-*.avro")
    return 0


def launch(args: SnapshotOptions, terminal=None):
    """Build the pipeline and run it; its result, finished unless --no_wait or a dry run.

    A local run shows its progress on `terminal` unless --quiet, and runs in parts of at most
    --lines_per_part lines, one pipeline after the other (pipeline.parts): its results replace
    those of the prefix when the last part is done, and the result is the last part's."""
    limits = options.limits(args)
    runner = local.runner(args) if local.is_local(args) else None
    in_parts = local.on_this_machine(args) and not args.no_wait
    if local.on_this_machine(args):
        local.keep_every_element()
    sources = accounting.manifest_sources(args.manifest) if in_parts else []
    pieces = split(sources, args.lines_per_part)
    progress = Progress(len(sources), terminal) if in_parts and not args.quiet else None
    decoders = guarded.shared_decoding_pool(limits) if runner is not None and limits.isolate else None
    if decoders is not None:  # the workers are threads of this process: their decoders start while Beam builds
        decoders.prestart(local.workers(args))
    if in_parts:
        parts.clear(args.results)
    try:
        for index, part in enumerate(pieces):
            if index:
                gc.collect()  # the last part's runner and its buffers hold each other: let them go first
            p = beam.Pipeline(runner=runner, options=args)
            graph.build(
                p,
                args.manifest,
                parts.prefix(args.results, index) if in_parts else args.results,
                make_buckets(args),
                make_targets(args),
                limits,
                args.resume,
                progress.path if progress else None,
                part,
            )
            outcome = p.run()
            if not args.no_wait:
                outcome.wait_until_finish()
        if in_parts:
            parts.join(args.results, len(pieces))
        return outcome
    finally:
        if progress is not None:
            progress.close()
        if decoders is not None:
            decoders.release()


def summary(records: list[dict], carried: int = 0) -> str:
    """'N jobs: S succeeded, F failed', or 'N jobs: C carried over, S succeeded, F failed'."""
    succeeded = sum(r["State"] == State.SUCCESS for r in records) - carried
    over = f"{carried} carried over, " if carried else ""
    return f"{len(records)} jobs: {over}{succeeded} succeeded, {len(records) - carried - succeeded} failed"


def carried_over(previous: str, records: list[dict]) -> int:
    """How many of the new records are those of an earlier run's successes, carried over."""
    before = {r["Id"]: r["FinishTime"] for r in results_of(previous) if r["State"] == State.SUCCESS}
    return sum(before.get(r["Id"]) == r["FinishTime"] for r in records)


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


def remove_temporary_results(prefix: str) -> None:
    """Beam's temporary result files (beam-temp-PREFIX-*), which a failed write leaves behind."""
    folder, name = posixpath.split(prefix)
    pattern = posixpath.join(folder or ".", f"beam-temp-{name}-*")
    if "://" in prefix:
        with contextlib.suppress(Exception):
            FileSystems.delete([m.path for m in FileSystems.match([pattern + "/*"])[0].metadata_list])
        return
    for path in glob.glob(pattern):
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
