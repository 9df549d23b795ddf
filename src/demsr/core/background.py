"""One piece of work in a second thread beside the caller's, on a second core, always
joined before returning (beside); calls in a few lanes at once, their results taken in
order (Lanes).

NumPy, SciPy and PyTorch release the GIL inside their array loops, so two array-heavy
tasks in two threads use two cores. Python-heavy work (imports, many small arrays) does
not: keep it out of the window.

Everything the work reports (progress, warnings) reaches the caller's monitor from the
caller's thread only, so a QGIS feedback object sees one thread and a progress bar that
only moves forward.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout  # not the builtin before 3.11
from contextlib import contextmanager
from collections import deque
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from .monitor import Monitor

T = TypeVar("T")
POLL_SECONDS = 0.1  # how often a caller waiting for the result reports the work's progress


class Beside(Generic[T]):
    """The caller's handle on work running beside it."""

    def __init__(self, future: Future, warnings: list[str], latest: list[float],
                 progress: Optional[Callable[[float], None]], monitor: Monitor):
        self._future, self._warnings, self._latest = future, warnings, latest
        self._progress, self._monitor = progress, monitor

    def report(self) -> None:
        """Pass the work's latest progress on (call it from the caller's own loops)."""
        if self._progress is not None:
            self._progress(self._latest[0])

    def result(self) -> T:
        """Wait for the work (reporting its progress meanwhile); its value, or its error."""
        while True:
            try:
                value = self._future.result(timeout=POLL_SECONDS)
                break
            except WaitTimeout:
                self.report()
        self.report()
        for message in self._warnings:
            self._monitor.warning(message)
        self._warnings.clear()
        return value


@contextmanager
def beside(work: Callable[[Monitor], T], monitor: Monitor,
           progress: Optional[Callable[[float], None]] = None) -> Iterator[Beside[T]]:
    """Run work(m) in a thread while the with-block runs. The block takes the result with
    handle.result() (re-raising the work's error); m's progress goes to `progress` when
    the block calls handle.report() or waits in result(), its warnings to `monitor` with
    the result. When the block fails or is cancelled, the work stops at its next
    m.check() and is waited for, so no thread outlives the block."""
    stop = threading.Event()
    warnings: list[str] = []
    latest = [0.0]

    def note(fraction: float) -> None:
        latest[0] = max(latest[0], min(max(fraction, 0.0), 1.0))

    inner = Monitor(progress=note, cancelled=lambda: stop.is_set() or monitor.cancelled(),
                    warning=warnings.append)
    pool = ThreadPoolExecutor(1, thread_name_prefix="demsr-beside")
    future: Future = pool.submit(work, inner)
    try:
        yield Beside(future, warnings, latest, progress, monitor)
    finally:
        stop.set()
        pool.shutdown(wait=True)


class Lanes:
    """Up to `n` calls running at once in worker threads, their results taken back in the
    caller's thread in the order they were submitted (a streaming engine: read in order,
    compute n tiles at once, write in order). One more call waits queued, so that a lane
    that finishes starts the next at once while the caller writes and reads. With n = 1 a
    call runs at once in the caller's thread. Leaving the with-block waits for the calls
    still running (at most n; a queued one is dropped), so no thread outlives it; an error
    of a call is raised where its result is taken."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self._pool = (ThreadPoolExecutor(self.n, thread_name_prefix="demsr-lane")
                      if self.n > 1 else None)
        self._running: deque = deque()

    def __enter__(self) -> "Lanes":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, tag: Any, work: Callable[..., T], *args) -> list[tuple[Any, T]]:
        """Start work(*args) (or queue it behind the n running); returns the (tag, result)
        of the oldest calls that had to finish to keep at most n + 1 submitted."""
        if self._pool is None:
            return [(tag, work(*args))]
        self._running.append((tag, self._pool.submit(work, *args)))
        done = []
        while len(self._running) > self.n:
            done.append(self._take())
        return done

    def drain(self) -> list[tuple[Any, Any]]:
        """(tag, result) of every call still running, in submission order."""
        return [self._take() for _ in range(len(self._running))]

    def _take(self) -> tuple[Any, Any]:
        tag, future = self._running.popleft()
        return tag, future.result()
