"""core.background.beside: the work runs in a second thread, its result, error, warnings and
progress reach the caller (from the caller's thread), and it never outlives the block.
core.background.Lanes: n calls at once, results in submission order, no thread outlives it."""
import threading
import time

import numpy as np
import pytest

from demsr.core.background import Lanes, beside
from demsr.core.errors import Cancelled
from demsr.core.monitor import Monitor


def _spin(m: Monitor, seconds: float = 30.0) -> str:
    """Work that checks for cancellation, as core work does, until told to stop."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m.check()
        time.sleep(0.01)
    return "finished"


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("demsr-beside")]


def test_result_comes_from_another_thread_while_the_caller_works():
    seen = {}

    def work(m: Monitor) -> np.ndarray:
        seen["thread"] = threading.get_ident()
        m.warning("from the work")
        return np.arange(5) * 2

    warnings = []
    with beside(work, Monitor(warning=warnings.append)) as handle:
        mine = np.ones(3).sum()              # the caller goes on meanwhile
        assert warnings == []                # not yet: warnings come with the result
        value = handle.result()
    assert mine == 3
    np.testing.assert_array_equal(value, [0, 2, 4, 6, 8])
    assert seen["thread"] != threading.get_ident()
    assert warnings == ["from the work"]
    assert not _workers()


def test_an_error_of_the_work_is_raised_by_result():
    def work(m: Monitor):
        raise ValueError("bad terrain")

    with pytest.raises(ValueError, match="bad terrain"):
        with beside(work, Monitor()) as handle:
            handle.result()
    assert not _workers()


def test_a_failing_caller_stops_the_work_and_waits_for_it():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="caller failed"):
        with beside(_spin, Monitor()):
            time.sleep(0.05)
            raise RuntimeError("caller failed")
    assert time.monotonic() - started < 5          # stopped, not run for its 30 s
    assert not _workers()


def test_a_user_cancel_reaches_the_work():
    flag = threading.Event()
    monitor = Monitor(cancelled=flag.is_set)
    with pytest.raises(Cancelled):
        with beside(_spin, monitor) as handle:
            flag.set()
            handle.result()
    assert not _workers()


def test_progress_reaches_the_caller_from_its_own_thread_and_only_grows():
    release = threading.Event()

    def work(m: Monitor) -> int:
        for k in range(1, 6):
            m.progress(k / 10)
            time.sleep(0.05)
        m.progress(0.3)                      # a step back is not shown
        release.wait(5)
        m.progress(1.0)
        return 7

    seen = []
    caller = threading.get_ident()
    with beside(work, Monitor(), lambda f: seen.append((threading.get_ident(), f))) as handle:
        time.sleep(0.4)
        handle.report()                      # the caller's loops pass it on
        assert seen and seen[-1][1] == 0.5
        release.set()
        assert handle.result() == 7          # waiting reports it too, up to the end
    values = [f for _, f in seen]
    assert {t for t, _ in seen} == {caller}
    assert values == sorted(values) and values[-1] == 1.0


def _lane_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("demsr-lane")]


def test_lanes_run_calls_at_once_and_return_them_in_order():
    lock, running, most, threads = threading.Lock(), [0], [0], set()

    def work(k: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threads.add(threading.get_ident())
        time.sleep(0.05 if k % 2 == 0 else 0.01)  # even calls finish after the next odd one
        with lock:
            running[0] -= 1
        return k * k

    got = []
    with Lanes(2) as lanes:
        for k in range(8):
            got += lanes.submit(k, work, k)
            assert running[0] <= 2
        got += lanes.drain()
    assert got == [(k, k * k) for k in range(8)]     # in order, though odd ones finish first
    assert most[0] == 2                               # two at once, never more
    assert threading.get_ident() not in threads
    assert not _lane_workers()


def test_one_lane_runs_each_call_at_once_in_the_callers_thread():
    seen = []
    with Lanes(1) as lanes:
        assert lanes.submit("a", lambda: seen.append(threading.get_ident()) or 1) == [("a", 1)]
        assert lanes.drain() == []
    assert seen == [threading.get_ident()]


def test_an_error_in_a_lane_is_raised_where_its_result_is_taken_and_no_lane_outlives_it():
    def work(k: int) -> int:
        if k == 1:
            raise ValueError("bad tile")
        time.sleep(0.02)
        return k

    got = []
    with pytest.raises(ValueError, match="bad tile"):
        with Lanes(2) as lanes:
            for k in range(4):
                got += lanes.submit(k, work, k)
    assert got == [(0, 0)]
    assert not _lane_workers()
