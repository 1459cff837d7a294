"""python -m pipeline --manifest PATH_OR_GLOB --results PREFIX [--bucket_root DIR] [Beam options]

Exits 0 when every job got its result, good or bad. Otherwise one line on stderr says why:
exit 2 when the run cannot start (no manifest, an unwritable results folder, ...), and 1 when
it failed or a line has no result; the details are then in the log file that line names.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import posixpath
import re
import shutil
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import accounting, graph, local
from pipeline.runlog import RunLog
from snapshot import isolation
from snapshot.limits import Limits
from snapshot.notify import Delivery, Targets
from snapshot.storage import Buckets, Retry


# flag -> Limits field
LIMIT_FLAGS = {"sync_timeout": "sync_timeout_s", "async_timeout": "async_timeout_s",
               "probe_timeout": "probe_timeout_s", "max_input_pixels": "max_input_pixels", "max_points": "max_points",
               "max_output_pixels": "max_output_pixels", "max_sheet_pixels": "max_sheet_pixels",
               "max_frames_per_point": "max_frames_per_point", "decoder_threads": "decoder_threads",
               "decoder_memory_mb": "decoder_memory_mb"}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="JSON Lines manifest: a path or a glob")
    parser.add_argument("--results", required=True, help="results prefix: writes PREFIX-*.avro")
    parser.add_argument("--bucket_root", default="./buckets",
                        help="folder or gs://bucket[/prefix] holding one sub-folder per bucket (default: ./buckets)")
    parser.add_argument("--bucket_map", help="JSON file: bucket name (or \"*\") -> local folder or gs:// root")
    parser.add_argument("--roles", help="JSON file: RoleArn -> {\"key_file\": ...} or {\"impersonate\": ...}")
    parser.add_argument("--storage_retries", type=int, default=Retry.attempts,
                        help=f"attempts per remote storage request (default: {Retry.attempts})")
    parser.add_argument("--storage_timeout", type=float, default=Retry.timeout_s,
                        help=f"seconds per remote storage request (default: {Retry.timeout_s:g})")
    parser.add_argument("--pipelines", help="JSON file: PipelineId -> notification target "
                                             "(http(s) URL, .jsonl file, pubsub://projects/P/topics/T)")
    parser.add_argument("--notify_attempts", type=int, default=Delivery.attempts,
                        help=f"attempts per notification (default: {Delivery.attempts})")
    parser.add_argument("--notify_timeout", type=float, default=Delivery.timeout_s,
                        help=f"seconds per notification attempt (default: {Delivery.timeout_s:g})")
    caps = parser.add_argument_group("limits (README: Limits)")
    for name, field in LIMIT_FLAGS.items():
        default = getattr(Limits, field)
        caps.add_argument(f"--{name}", type=type(default), default=default, help=f"default: {default}")
    caps.add_argument("--no_isolation", action="store_true",
                      help="decode in the worker itself (faster to start; no time limits, no crash containment)")
    return parser.parse_known_args(argv)


def make_limits(args: argparse.Namespace) -> Limits:
    return Limits(isolate=not args.no_isolation, **{field: getattr(args, name) for name, field in LIMIT_FLAGS.items()})


def make_targets(args: argparse.Namespace) -> Targets:
    delivery = Delivery(attempts=max(1, args.notify_attempts), timeout_s=args.notify_timeout)
    return Targets.from_file(graph.default_messages_file(args.results), args.pipelines, delivery)


def make_buckets(args: argparse.Namespace) -> Buckets:
    retry = Retry(attempts=max(1, args.storage_retries), timeout_s=args.storage_timeout)
    return Buckets.from_files(args.bucket_root, args.bucket_map, args.roles, retry)


def beam_options(beam_args: list[str]) -> PipelineOptions:
    return PipelineOptions(local.with_defaults(beam_args), save_main_session=False)


def check_run_can_happen(args: argparse.Namespace) -> str | None:
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
    return None


def main(argv: list[str] | None = None) -> int:
    args, beam_args = parse_args(sys.argv[1:] if argv is None else argv)
    reason = check_run_can_happen(args)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    log = RunLog()
    try:
        with log.capturing_stderr():
            outcome = run(args, beam_args)
        lost = accounting.unaccounted(args.manifest, args.results)
    except Exception as error:  # noqa: BLE001 - the run itself failed: one line here, the rest in the log
        log.add_traceback(error)
        remove_temporary_results(args.results)
        print(f"error: the run failed ({cause(error)}); details in {log.close(keep=True)}", file=sys.stderr)
        return 1
    path = log.close(keep=bool(lost))
    if lost:
        print(f"error: {lost}; details in {path}", file=sys.stderr)
        return 1
    print(f"{summary(outcome)}; results in {args.results}-*.avro")
    return 0


def run(args: argparse.Namespace, beam_args: list[str]):
    """Build and run the pipeline; its finished result."""
    options, limits = beam_options(beam_args), make_limits(args)
    runner = None
    if local.is_local(options):
        runner = local.runner(options)
        if limits.isolate:  # the worker threads run in this process: start their decoding processes meanwhile
            isolation.prestart(local.workers(options), limits.decoder_memory_mb)
    p = beam.Pipeline(runner=runner, options=options)
    graph.build(p, args.manifest, args.results, make_buckets(args), make_targets(args), limits)
    outcome = p.run()
    outcome.wait_until_finish()
    return outcome


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


def summary(outcome) -> str:
    """'N jobs: S succeeded, F failed', from the pipeline's counters."""
    counters = {c.key.metric.name: c.committed for c in outcome.metrics().query()["counters"]}
    succeeded, failed = counters.get("jobs_succeeded", 0), counters.get("jobs_failed", 0)
    return f"{succeeded + failed} jobs: {succeeded} succeeded, {failed} failed"


if __name__ == "__main__":
    sys.exit(main())
