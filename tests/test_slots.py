"""Machine-wide decoder slots: never more holders than the bound, waiting instead of failing,
and a killed holder's slot freed by the kernel."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from snapshot import isolation, slots


def hold(where: str, seconds: float) -> None:
    with slots.held(2, where):
        time.sleep(seconds)


def test_processes_and_threads_never_hold_more_slots_than_the_bound(tmp_path):
    where = str(tmp_path)
    context = multiprocessing.get_context("spawn")
    holders = [context.Process(target=hold, args=(where, 0.3)) for _ in range(3)]
    threads = [threading.Thread(target=hold, args=(where, 0.3)) for _ in range(3)]
    seen: list[list[tuple[int, int]]] = []
    for worker in [*holders, *threads]:
        worker.start()
    while any(w.is_alive() for w in [*holders, *threads]):
        seen.append(slots.busy(2, where))
        time.sleep(0.005)
    assert max(len(s) for s in seen) == 2 and all(h.exitcode == 0 for h in holders)
    assert all(len({n for n, _ in s}) == len(s) for s in seen)  # one holder per slot
    assert {pid for s in seen for _, pid in s} >= {h.pid for h in holders}  # every process got its turn


def test_a_killed_holder_frees_its_slot(tmp_path):
    where = str(tmp_path)
    holder = multiprocessing.get_context("spawn").Process(target=hold, args=(where, 60))
    holder.start()
    while not slots.busy(2, where):
        time.sleep(0.01)
    ((n, pid),) = slots.busy(2, where)
    assert pid == holder.pid and slots.last_holder(n, where) == (holder.pid, os.getpid())
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert slots.busy(2, where) == []


def test_a_pool_call_waits_for_a_slot_outside_its_time_limit(tmp_path, monkeypatch):
    monkeypatch.setenv(slots.FOLDER_VARIABLE, str(tmp_path))
    with isolation.Pool(max_decoders=1) as pool:
        with slots.held(1):  # the machine's only slot is taken for 1.5 s
            started = time.monotonic()
            waiter = threading.Thread(target=lambda: seen.append(pool.run(os.getpid, (), 1.0)))
            seen: list[int] = []
            waiter.start()
            time.sleep(1.5)
        waiter.join()
    assert seen and seen[0] != os.getpid() and time.monotonic() - started >= 1.5  # waited, then ran within 1 s
