"""One piece of work in a second thread beside the caller's, on a second core, always
joined before returning.

NumPy, SciPy and PyTorch release the GIL inside their array loops, so two array-heavy
tasks in two threads use two cores. Python-heavy work (imports, many small arrays) does
not: keep it out of the window.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from .monitor import Monitor

T = TypeVar("T")


@contextmanager
def beside(work: Callable[[Monitor], T], monitor: Monitor) -> Iterator[Callable[[], T]]:
    """Run work(m) in a thread while the with-block runs; the block calls the yielded
    function for its result (re-raising its error). When the block fails or is cancelled,
    the work stops at its next m.check() and is waited for, so no thread outlives the
    block. The work's warnings reach `monitor` from the caller's thread, with its result;
    its progress is not reported (the caller's is)."""
    stop = threading.Event()
    warnings: list[str] = []
    inner = Monitor(cancelled=lambda: stop.is_set() or monitor.cancelled(),
                    warning=warnings.append)
    pool = ThreadPoolExecutor(1, thread_name_prefix="demsr-beside")
    future: Future = pool.submit(work, inner)

    def result() -> T:
        value = future.result()
        for message in warnings:
            monitor.warning(message)
        warnings.clear()
        return value

    try:
        yield result
    finally:
        stop.set()
        pool.shutdown(wait=True)

