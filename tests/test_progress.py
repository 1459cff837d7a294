"""The progress line: no time left before there is a rate, and none that is absurd near the end."""

from __future__ import annotations

import io

from pipeline import progress
from pipeline.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_rate_and_no_time_left_before_the_first_job():
    assert progress.line(0, 21, 0, 0, 12.5) == "0/21 jobs, 0 images, 0 failed"
    assert "nan" not in progress.line(0, 21, 0, 0, 0.0)


def test_the_time_left_comes_from_the_mean_rate_and_ends_with_the_run():
    assert progress.line(620, 1000, 1854, 48, 7.2) == "620/1000 jobs, 1854 images, 48 failed, 86.1 jobs/s, 4 s left"
    assert progress.line(20, 21, 60, 1, 100.0) == "20/21 jobs, 60 images, 1 failed, 0.2 jobs/s, 5 s left"
    assert progress.line(21, 21, 63, 1, 100.0) == "21/21 jobs, 63 images, 1 failed, 0.2 jobs/s"
    assert progress.line(1, 1000, 3, 0, 0.5).endswith(", 2.0 jobs/s, 8 min 20 s left")
    assert [progress.duration(s) for s in (0.2, 59.4, 230, 7260)] == ["1 s", "59 s", "3 min 50 s", "2 h 01 min"]


def test_a_burst_after_a_pause_does_not_make_the_terminals_time_left_absurd():
    """Jobs finish a bundle at a time: 20 of 21 at once after 50 s. The last rate seen says
    minutes; the mean rate says about 2 s, as the plain line does."""
    clock = [0.0]
    shown = Terminal()
    bar = Progress(21, shown)
    try:
        bar.bar._time = lambda: clock[0]
        bar.bar.start_t = bar.bar.last_print_t = 0.0
        for n in range(20):
            clock[0] = 50.0 + n * 0.01
            bar.bar.update(1)
        bar.bar.refresh()
    finally:
        bar.close()
    last = shown.getvalue().split("\r")[-2]
    assert "20/21 [00:50<00:02" in last, last
