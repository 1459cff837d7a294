"""The pipeline's own flags, as a PipelineOptions subclass: they travel with the job, show in
the Dataflow UI and work in a Flex template. `python -m pipeline --help` lists them."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import flags, runs
from snapshot.limits import Limits
from snapshot.objects import Retry
from snapshot.targets import Delivery

# the largest value of each number flag that the code can handle (docs/operations.md#limits)
MAX_DECODER_THREADS = 64
MAX_MEMORY_MB = 1_048_576  # 1 TiB of address space
MAX_INPUT_PIXELS = 268_435_456  # FFmpeg decodes no larger frame: (width + 128) x (height + 128) < 2**28
MAX_SHEET_PIXELS = 65_535 * 65_535  # the largest JPEG
MAX_DECODERS = 1_024
MAX_ATTEMPTS = 100
MAX_LINES = 1_000_000_000  # per part

# flag -> (Limits field, what it limits and in which unit, its checked type)
LIMIT_FLAGS = {
    "sync_timeout": (
        "sync_timeout_s",
        "seconds each step of a job without Interval, Num or TimeArray may take",
        flags.SECONDS,
    ),
    "async_timeout": ("async_timeout_s", "seconds each step of any other job may take", flags.SECONDS),
    "probe_timeout": ("probe_timeout_s", "seconds planning an input of asynchronous jobs may take", flags.SECONDS),
    "max_input_pixels": (
        "max_input_pixels",
        "largest input video, in pixels (width x height)",
        flags.Number(MAX_INPUT_PIXELS),
    ),
    "max_points": ("max_points", "most snapshots per job, TimeArray points included", flags.Number(1_000_000)),
    "max_output_pixels": (
        "max_output_pixels",
        "most pixels a job writes, images and sheets together",
        flags.Number(10**15),
    ),
    "max_sheet_pixels": ("max_sheet_pixels", "most pixels of one sprite sheet", flags.Number(MAX_SHEET_PIXELS)),
    "max_frames_per_point": (
        "max_frames_per_point",
        "most frames decoded to reach one snapshot",
        flags.Number(1_000_000),
    ),
    "decoder_threads": (
        "decoder_threads",
        "threads per decoder; the workers already run in parallel",
        flags.Number(MAX_DECODER_THREADS),
    ),
    "decoder_memory_mb": (
        "decoder_memory_mb",
        "address space of a decoding process, in MB; 0: no cap",
        flags.Number(MAX_MEMORY_MB, low=0),
    ),
}


def _metavar(name: str) -> str:
    if name.endswith("timeout"):
        return "SECONDS"
    return "PIXELS" if name.endswith("pixels") else "MB" if name.endswith("_mb") else "N"


class SnapshotOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        required = parser.add_argument_group("required")
        required.add_argument(
            "--manifest", metavar="PATH_OR_GLOB", help="JSON Lines manifest, one request per line: a path or a glob"
        )
        required.add_argument(
            "--results",
            metavar="PREFIX",
            help="results prefix, not a folder: PREFIX writes PREFIX-00000-of-0000N.avro (outdir/ is refused: "
            "write outdir/run1)",
        )
        flags.add_bucket_arguments(parser)
        parser.add_argument(
            "--storage_retries",
            metavar="N",
            type=flags.Number(MAX_ATTEMPTS),
            default=Retry.attempts,
            help=f"attempts per remote storage request (default: {Retry.attempts}; at most {MAX_ATTEMPTS})",
        )
        parser.add_argument(
            "--storage_timeout",
            metavar="SECONDS",
            type=flags.SECONDS,
            default=Retry.timeout_s,
            help=f"seconds per remote storage request (default: {Retry.timeout_s:g}; at most {flags.WEEK_S:,})",
        )
        parser.add_argument(
            "--pipelines",
            metavar="FILE",
            help="JSON file: PipelineId -> notification target "
            "(http(s) URL, .jsonl file, pubsub://projects/P/topics/T)",
        )
        parser.add_argument(
            "--notify_attempts",
            metavar="N",
            type=flags.Number(MAX_ATTEMPTS),
            default=Delivery.attempts,
            help=f"attempts per notification (default: {Delivery.attempts}; at most {MAX_ATTEMPTS})",
        )
        parser.add_argument(
            "--notify_timeout",
            metavar="SECONDS",
            type=flags.SECONDS,
            default=Delivery.timeout_s,
            help=f"seconds per notification attempt (default: {Delivery.timeout_s:g}; at most {flags.WEEK_S:,})",
        )
        parser.add_argument(
            "--resume",
            metavar="PREVIOUS_PREFIX",
            help="the results prefix of an earlier run of this manifest: the jobs that "
            "succeeded there are carried over, not run again",
        )
        parser.add_argument(
            "--lines_per_part",
            metavar="N",
            type=flags.Number(MAX_LINES, low=0),
            default=runs.DEFAULT_LINES,
            help="a local run of a longer manifest runs in parts of at most this many lines, one after "
            f"the other, so that its memory stays bounded (default: {runs.DEFAULT_LINES}; 0: one part; "
            f"at most {MAX_LINES:,})",
        )
        parser.add_argument("--quiet", action="store_true", default=False, help="no progress line during a local run")
        parser.add_argument(
            "--no_wait",
            action="store_true",
            default=False,
            help="submit the job and return with its id, without waiting for it "
            "(Dataflow, Flex templates, a Flink cluster)",
        )
        limits = parser.add_argument_group("limits", "past a limit, the job fails (docs/operations.md#limits)")
        for name, (field, meaning, checked) in LIMIT_FLAGS.items():
            default = getattr(Limits, field)
            limits.add_argument(
                f"--{name}",
                metavar=_metavar(name),
                type=checked,
                default=default,
                help=f"{meaning} (default: {default:,}; at most {checked.high:,})",
            )
        parser.add_argument(
            "--max_decoders",
            type=flags.Number(MAX_DECODERS, low=0),
            metavar="N",
            default=Limits.max_decoders,
            help="decoding processes at work at once on this machine, across all its worker processes; "
            "a step waits for a free one before its time limit starts "
            f"(default: 0, the machine's cores; at most {MAX_DECODERS:,})",
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
        **{field: getattr(options, name) for name, (field, _, _) in LIMIT_FLAGS.items()},
    )
