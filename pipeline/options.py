"""The pipeline's own flags, as a PipelineOptions subclass: they travel with the job, show in
the Dataflow UI and work in a Flex template. `python -m pipeline --help` lists them."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import runs
from snapshot.limits import Limits
from snapshot.notify import Delivery
from snapshot.objects import Retry

# flag -> Limits field
LIMIT_FLAGS = {
    "sync_timeout": "sync_timeout_s",
    "async_timeout": "async_timeout_s",
    "probe_timeout": "probe_timeout_s",
    "max_input_pixels": "max_input_pixels",
    "max_points": "max_points",
    "max_output_pixels": "max_output_pixels",
    "max_sheet_pixels": "max_sheet_pixels",
    "max_frames_per_point": "max_frames_per_point",
    "decoder_threads": "decoder_threads",
    "decoder_memory_mb": "decoder_memory_mb",
}


class SnapshotOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--manifest", help="JSON Lines manifest: a path or a glob (required)")
        parser.add_argument("--results", help="results prefix: writes PREFIX-*.avro (required)")
        parser.add_argument(
            "--bucket_root",
            default="./buckets",
            help="folder or gs://bucket[/prefix] holding one sub-folder per bucket (default: ./buckets)",
        )
        parser.add_argument("--bucket_map", help='JSON file: bucket name (or "*") -> local folder or gs:// root')
        parser.add_argument("--roles", help='JSON file: RoleArn -> {"key_file": ...} or {"impersonate": ...}')
        parser.add_argument(
            "--storage_retries",
            type=int,
            default=Retry.attempts,
            help=f"attempts per remote storage request (default: {Retry.attempts})",
        )
        parser.add_argument(
            "--storage_timeout",
            type=float,
            default=Retry.timeout_s,
            help=f"seconds per remote storage request (default: {Retry.timeout_s:g})",
        )
        parser.add_argument(
            "--pipelines",
            help="JSON file: PipelineId -> notification target "
            "(http(s) URL, .jsonl file, pubsub://projects/P/topics/T)",
        )
        parser.add_argument(
            "--notify_attempts",
            type=int,
            default=Delivery.attempts,
            help=f"attempts per notification (default: {Delivery.attempts})",
        )
        parser.add_argument(
            "--notify_timeout",
            type=float,
            default=Delivery.timeout_s,
            help=f"seconds per notification attempt (default: {Delivery.timeout_s:g})",
        )
        parser.add_argument(
            "--resume",
            metavar="PREVIOUS_PREFIX",
            help="the results prefix of an earlier run of this manifest: the jobs that "
            "succeeded there are carried over, not run again",
        )
        parser.add_argument(
            "--lines_per_part",
            type=int,
            default=runs.DEFAULT_LINES,
            help="a local run of a longer manifest runs in parts of at most this many lines, one after "
            f"the other, so that its memory stays bounded (default: {runs.DEFAULT_LINES}; 0: one part)",
        )
        parser.add_argument("--quiet", action="store_true", default=False, help="no progress line during a local run")
        parser.add_argument(
            "--no_wait",
            action="store_true",
            default=False,
            help="submit the job and return with its id, without waiting for it "
            "(Dataflow, Flex templates, a Flink cluster)",
        )
        for name, field in LIMIT_FLAGS.items():
            default = getattr(Limits, field)
            parser.add_argument(f"--{name}", type=type(default), default=default, help=f"limit (default: {default})")
        parser.add_argument(
            "--max_decoders",
            type=int,
            default=Limits.max_decoders,
            help="decoding processes at work at once on this machine, across all its worker processes: "
            "a step waits for one, outside its time limit (default: 0, the machine's cores)",
        )
        parser.add_argument(
            "--no_isolation",
            action="store_true",
            default=False,
            help="decode in the worker itself (faster to start; no time limits, no crash containment)",
        )


def limits(options: SnapshotOptions) -> Limits:
    return Limits(
        isolate=not options.no_isolation,
        max_decoders=options.max_decoders,
        **{field: getattr(options, name) for name, field in LIMIT_FLAGS.items()},
    )
