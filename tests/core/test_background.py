"""core.background.beside: the work runs in a second thread, its result, error, warnings and
progress reach the caller (from the caller's thread), and it never outlives the block."""
import threading
import time

import numpy as np
import pytest

from demsr.core.background import beside
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
