"""python -m pipeline.submit --input JSON --config JSON [options]: one job, answered at once.

Runs a single SubmitSnapshotJob request in this process, without a Beam pipeline, through
the same code as the pipeline, and prints the API's response JSON: {"RequestId": ...,
"SnapshotJob": {...}}, in the shapes of the official SDK's model. Exit codes, as for
`python -m pipeline`: 0 when the job succeeded, 3 when it failed (the response says why), 2
when it could not start (a wrong flag or number, a bucket root that is not a folder, an
unreadable bucket map, roles or pipelines file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

from pipeline import flags
from snapshot import assemble, guarded, isolation, jobs, notify, results, tasks
from snapshot.errors import SnapshotError
from snapshot.jobs import Job, ManifestLine
from snapshot.limits import Limits
from snapshot.results import JobResult
from snapshot.storage import Buckets
from snapshot.targets import Delivery, Targets

DEFAULT_MESSAGES = "./snapshot-messages.jsonl"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = flags.Parser(
        prog="python -m pipeline.submit",
        usage="%(prog)s --input JSON --config JSON [options]",
        description="Runs one SubmitSnapshotJob request at once and prints the API's response.",
        epilog=" ".join(__doc__.split("\n\n")[1].split()),
        allow_abbrev=False,
    )
    required = parser.add_argument_group("required")
    required.add_argument(
        "--input", metavar="JSON", required=True, help='the Input JSON: {"Bucket", "Location", "Object"}'
    )
    required.add_argument("--config", metavar="JSON", required=True, help="the SnapshotConfig JSON")
    parser.add_argument("--pipeline_id", metavar="ID", default="", help="PipelineId: where the job's message goes")
    parser.add_argument(
        "--user_data", metavar="TEXT", default="", help="UserData, echoed in the response and the message"
    )
    flags.add_bucket_arguments(parser)
    parser.add_argument("--pipelines", metavar="FILE", help="JSON file: PipelineId -> notification target")
    parser.add_argument(
        "--messages",
        metavar="FILE",
        default=DEFAULT_MESSAGES,
        help=f"JSON Lines file for messages when no pipelines file is given (default: {DEFAULT_MESSAGES})",
    )
    parser.add_argument(
        "--sync_timeout",
        metavar="SECONDS",
        type=flags.SECONDS,
        default=Limits.sync_timeout_s,
        help=f"seconds a synchronous job may take (default: {Limits.sync_timeout_s:g}; at most {flags.WEEK_S:,})",
    )
    parser.add_argument("--timeout", dest="sync_timeout", type=flags.SECONDS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--async_timeout",
        metavar="SECONDS",
        type=flags.SECONDS,
        default=Limits.async_timeout_s,
        help="seconds a job with Interval, Num or TimeArray may take "
        f"(default: {Limits.async_timeout_s:g}; at most {flags.WEEK_S:,})",
    )
    args, extra = parser.parse_known_args(flags.canonical(argv))
    if extra:
        shown = [a.partition("=")[0] for a in parser._option_string_actions if a != "--timeout"]  # noqa: SLF001
        names = [arg.partition("=")[0] for arg in extra if arg.startswith("--")]
        parser.error("; ".join(flags.typos(names, shown)) or f"unrecognized arguments: {' '.join(extra)}")
    return args


def request_line(args: argparse.Namespace) -> str:
    """The manifest line of the request, as the pipeline would read it."""
    fields = {"Input": args.input, "SnapshotConfig": args.config}
    if args.pipeline_id:
        fields["PipelineId"] = args.pipeline_id
    if args.user_data:
        fields["UserData"] = args.user_data
    return json.dumps(fields, ensure_ascii=False)


def run(job: Job, buckets: Buckets, limits: Limits) -> JobResult:
    """The whole job in a forked child process, killed past the time limit of its mode."""
    if job.request is None:
        return assemble.failed(job, job.error or tasks.internal_error())
    worker = isolation.Worker("fork", limits.decoder_memory_mb, guarded.DECODING_STACK)
    try:
        return worker.call(
            assemble.run, (job, buckets, replace(limits, isolate=False)), limits.timeout_s(job.request.config.is_async)
        )
    except SnapshotError as error:
        return assemble.failed(job, error)
    finally:
        worker.close()


def main(argv: list[str] | None = None) -> int:
    flags.open_closed_streams()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if "://" not in args.bucket_root and not os.path.isdir(args.bucket_root):
        print(f"error: the bucket root {args.bucket_root} is not a folder", file=sys.stderr)
        return 2
    try:
        buckets = Buckets.from_files(args.bucket_root, args.bucket_map, args.roles)
        targets = Targets.from_file(args.messages, args.pipelines, Delivery())
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)  # the message names the file
        return 2
    started = time.monotonic()
    job = jobs.admit(jobs.read_job(ManifestLine("submit", 1, request_line(args)), results.utc_now()), targets.check)
    limits = Limits(sync_timeout_s=args.sync_timeout, async_timeout_s=args.async_timeout)
    result = run(job, buckets, limits)
    target = targets.target(result.pipeline_id)
    if target:  # the notification is part of the job: its time limit covers it
        deadline = started + limits.timeout_s(job.request is not None and job.request.config.is_async)
        (result,) = notify.Sender(targets.delivery).notified([result], target, deadline)
    flags.print_out(json.dumps(results.api_response(result.to_record()), indent=2, ensure_ascii=False))
    return 0 if result.state == results.State.SUCCESS else 3


if __name__ == "__main__":
    sys.exit(main())
