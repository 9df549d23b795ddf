"""The tiles' tasks on Dask distributed: a LocalCluster of worker processes by default, or the
cluster behind a scheduler address. One task per output tile (tile.py); progress by output
pixels; cancel, Ctrl-C or an error stop the scheduling, and `compute` returns (raising) only
when no task runs any more.

run.py plans and finishes the mosaic and hands the jobs to `compute`; another way to run the
same tasks replaces this module alone."""
from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from ...errors import Cancelled, DemSrError
from ...monitor import Monitor
from .plan import Job, MosaicRequest
from . import tile
from .tile import CANCEL, TileSettings, run_tile

GPU = "GPU"             # the worker resource a tile asks for when it runs on a GPU
STOP_GRACE_S = 120.0    # after a cancel, how long running tiles get to stop
POLL_S = 0.2

DASK_MISSING = ("Mosaics run on Dask distributed, which is not installed for this Python. "
                "Install it into the plugin's dependency folder: from the source folder "
                "`make deps`, or the installer's 'extras' (Install / repair dependencies), or "
                "`python3 -m pip install --target <QGIS profile>/python/demsr-deps "
                "'dask[distributed]'` with the Python QGIS uses.")


def require():
    """The `distributed` module, or a DemSrError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise DemSrError(f"{DASK_MISSING} (import error: {exc})") from None
    return distributed


def _local_gpus(req: MosaicRequest) -> int:
    """GPUs this machine's workers share out (0: CPU), by the same rule as select_device."""
    if req.sr.method != "model" or req.sr.device == "cpu":
        return 0
    from ...devices import import_torch, select_device

    if select_device(req.sr.device).device.startswith("cuda"):
        return import_torch().cuda.device_count()
    return 0


@contextmanager
def _client(req: MosaicRequest, workers: int, gpus: int, threads: int) -> Iterator:
    """A Dask client on the given scheduler (address or scheduler file), or on a LocalCluster
    of `workers` processes (one task at a time each, with its share of the cores, or one GPU
    each)."""
    distributed = require()
    if req.scheduler:
        where = dict(scheduler_file=req.scheduler) if os.path.isfile(req.scheduler) \
            else dict(address=req.scheduler)  # dask scheduler --scheduler-file FILE
        try:
            client = distributed.Client(**where, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise DemSrError(f"No Dask scheduler answers at '{req.scheduler}' ({exc}). Start "
                             "one (dask scheduler), or leave --scheduler out to run on this "
                             "machine.") from None
        with client:
            yield client
        return
    env = {"OMP_NUM_THREADS": str(threads)}
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.CRITICAL, env=env, resources={GPU: 1} if gpus else None,
        preload=[tile.__name__])  # tile.dask_setup: the workers leave Ctrl-C to the run
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _remote_gpus(client) -> bool:
    """Whether the cluster's workers declare GPUs (dask worker --resources GPU=1)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return any(w.get("resources", {}).get(GPU) for w in workers.values())


def compute(req: MosaicRequest, todo: list[Job], settings: TileSettings, headline: str,
            done_px: int, out_px: int, monitor: Monitor) -> None:
    """Compute every job's tile into OUT on Dask (`settings`: what the tiles share; this sets
    their CPU threads and GPUs). `headline` says what the mosaic is; the log line adds where
    it runs."""
    gpus = 0 if req.scheduler else _local_gpus(req)
    workers = min(req.workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    settings = replace(settings, threads=None if req.scheduler else threads, gpus=gpus)
    with _client(req, workers, gpus, threads) as client:
        where = (f"the cluster at {req.scheduler}" if req.scheduler else
                 f"{workers} local worker(s), " + (f"{gpus} GPU(s)" if gpus else
                                                   f"{threads} CPU thread(s) each"))
        monitor.info(f"{headline}; {where}.")
        gpu_tasks = bool(gpus) or (req.scheduler is not None and req.sr.device != "cpu"
                                   and req.sr.method == "model" and _remote_gpus(client))
        _run_tasks(client, todo, settings, gpu_tasks, done_px, out_px, monitor)


def _run_tasks(client, todo: list[Job], settings: TileSettings, gpu_tasks: bool, done_px: int,
               out_px: int, monitor: Monitor) -> None:
    """One task per job; a worker that dies takes its task back to the scheduler, which runs
    it again elsewhere (up to distributed.scheduler.allowed-failures times). On cancel,
    Ctrl-C or an error, no task starts any more, running ones stop at their next check, and
    this returns (raising) only when none runs."""
    run = uuid.uuid4().hex[:8]
    pending = {client.submit(run_tile, job, settings, key=f"demsr-{run}-{job.name}",
                             pure=False, retries=0,
                             resources={GPU: 1} if gpu_tasks else None): job for job in todo}
    failure = None
    try:
        while pending and failure is None:
            time.sleep(POLL_S)
            for fut in [f for f in pending if f.done()]:
                job = pending.pop(fut)
                if fut.status == "finished":
                    done_px += job.pixels
                    monitor.progress(done_px / out_px)
                else:
                    failure = failure or _explain(fut, job)
            if failure is None and monitor.cancelled():
                failure = Cancelled("cancelled by the user")
    except KeyboardInterrupt:
        failure = Cancelled("interrupted (Ctrl-C)")
    finally:
        if pending:
            _stop(client, list(pending), settings.work)
    if failure is not None:
        raise failure


def _explain(fut, job: Job) -> BaseException:
    """The task's error, worker deaths said plainly."""
    exc = fut.exception()
    if type(exc).__name__ == "KilledWorker":
        return DemSrError(f"Workers died while computing '{job.name}' (out of memory, or "
                          "killed), more often than Dask retries a task; the tiles finished "
                          "so far are kept. Run again to continue.")
    return exc


def _stop(client, futures: list, work: str) -> None:
    """Ask every task to stop (OUT/.work/CANCEL), wait for them, then drop what remains."""
    distributed = require()
    with open(os.path.join(work, CANCEL), "w"):
        pass
    try:
        distributed.wait(futures, timeout=STOP_GRACE_S)
    except TimeoutError:
        pass
    client.cancel(futures, force=True)
