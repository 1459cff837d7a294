"""The local runner: Beam's FnApiRunner, by default with one worker in Beam's in-process
environment. (Beam 2.77's DirectRunner first tries to download the Prism runner binary; its
batch engine, the FnApiRunner, needs nothing from outside.)

One worker keeps every core busy: the decoding steps hand their calls to the decoding
processes without waiting on each (transforms.jobs._Decoding). The in-process environment
passes each bundle's data in memory (`InMemoryDataChannel`, which has no timer), so a stage
costs less than with worker threads, and no data channel can lose an element.

`--direct_num_workers N` (N > 1, or 0 for one per core) runs N worker threads instead, each
with an embedded gRPC data channel. Beam 2.77's gRPC data channels flush on a timer thread
every second, and that flush races with the thread that writes elements: bytes written
between the timer's read of the buffer and its clearing are dropped, so large elements are
silently lost (docs/beam-local-data-loss.md). Both sides have the timer: the workers'
streams, and the runner's, which send each bundle's input to the workers, worker threads and
processes alike (100,000 lines with `multi_processing` lost the capture outcomes of 1,018
jobs). One Beam constant, `worker_handlers.DATA_BUFFER_TIME_LIMIT_MS`, sets both;
`keep_every_element()` makes it 0, so every stream flushes only between elements.
"""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, worker_handlers
from apache_beam.transforms.environments import EmbeddedPythonGrpcEnvironment

from snapshot import slots

LOCAL_RUNNERS = {"FnApiRunner", "DirectRunner"}  # what the command runs with pipeline.local


def is_local(options: PipelineOptions) -> bool:
    """The run uses the local runner in this process (not worker processes)."""
    direct = options.view_as(DirectOptions)
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS and direct.direct_running_mode in (
        None,
        "in_memory",
        "multi_threading",
    )


def on_this_machine(options: PipelineOptions) -> bool:
    """The run's workers are threads or processes of this machine."""
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS


def workers(options: PipelineOptions) -> int:
    """The workers: --direct_num_workers (Beam's default 1), or one per core for 0."""
    return options.view_as(DirectOptions).direct_num_workers or os.cpu_count() or 1


def in_process(options: PipelineOptions) -> bool:
    """The run's one worker is in this process, with nothing to spread work over."""
    return is_local(options) and workers(options) == 1


def early_decoders(max_decoders: int) -> int:
    """The decoding processes to start while Beam builds the graph: one per core but one, which
    builds it, and at least one. The others start when calls need them."""
    return max(1, min(slots.count(max_decoders), (os.cpu_count() or 1) - 1))


def with_defaults(beam_args: list[str]) -> list[str]:
    """The command's Beam arguments: the FnApiRunner unless they name a runner."""
    given = {arg.split("=", 1)[0] for arg in beam_args}
    return [*(["--runner", "FnApiRunner"] if "--runner" not in given else []), *beam_args]


def keep_every_element() -> None:
    """Every local data channel of this process flushes only between elements: 0 makes Beam
    use its size-based stream instead of the timed one, on the runner's side and on the side
    of the embedded workers (a `multi_processing` worker gets 0 from its own command line)."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def runner(options: PipelineOptions) -> FnApiRunner:
    """The local runner for `options`, which it changes so that Beam keeps its environment:
    one worker in Beam's in-process environment, or `workers(options)` worker threads."""
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers(options)
    direct.direct_running_mode = None  # a mode would make Beam replace the environment below
    keep_every_element()
    if in_process(options):
        return FnApiRunner()  # Beam's default: EmbeddedPythonEnvironment, data passed in memory
    return FnApiRunner(default_environment=EmbeddedPythonGrpcEnvironment(state_cache_size=None))
