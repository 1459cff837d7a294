"""The limits that protect the workers (docs/operations.md#limits): time, size and count caps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    sync_timeout_s: float = 5.0  # each step of a synchronous job (no Interval, Num, TimeArray)
    async_timeout_s: float = 600.0  # each step of any other job
    probe_timeout_s: float = 60.0  # planning (probing) an input of async jobs; sync ones: sync_timeout_s
    max_input_pixels: int = 8192 * 4320  # width x height of the input video, checked before decoding
    max_points: int = 10_000  # snapshots per job
    max_output_pixels: int = 10_000_000_000  # width x height summed over a job's images and sheets
    max_sheet_pixels: int = 100_000_000  # one sprite sheet
    max_frames_per_point: int = 3_000  # frames decoded to reach one point
    decoder_threads: int = 1  # per decoder; workers run in parallel already
    decoder_memory_mb: int = 4096  # address space of a decoding process (0: no cap)
    max_decoders: int = 0  # decoding processes at work at once on one machine, all workers (0: its cores)
    isolate: bool = True  # decode in a child process that can be killed
    skip_nonref: bool = True  # skip frames nothing references on the way to a point (media.Walk)

    def timeout_s(self, is_async: bool) -> float:
        return self.async_timeout_s if is_async else self.sync_timeout_s

    def probe_timeout(self, is_async: bool) -> float:
        return min(self.probe_timeout_s, self.async_timeout_s) if is_async else self.sync_timeout_s
