"""One output tile of a mosaic, as a Dask task on any worker: the Super-resolve engine on a
crop of the mosaic's source VRT, written under OUT/.work and moved into OUT only complete.

Every attempt writes under its own names, so a retry (after a worker died) never meets a
half tile of an earlier attempt, and an attempt that dies leaves only files in OUT/.work,
which the run removes. Needs OUT and the inputs on a filesystem every worker sees."""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, replace
from typing import Optional

from ...errors import Cancelled
from ...monitor import Monitor
from ...raster.grid import Grid, grid_factor, subdivided
from ..superresolve import SuperResolveRequest
from .plan import Job

CANCEL = "CANCEL"  # OUT/.work/CANCEL: the run asks every task to stop
CANCEL_POLL_S = 0.5


@dataclass
class TileSettings:
    """What every tile of one run shares (sent with each task)."""
    sr: SuperResolveRequest                    # the engine's settings (paths set per tile)
    source: str                                # the mosaic as one raster (VRT)
    band: int
    src_grid: Grid
    grid: Grid                                 # the whole mosaic's output grid
    work: str                                  # OUT/.work
    out_dir: str
    threads: Optional[int] = None              # CPU threads per task; None: the worker's share
    gpus: int = 0                              # local GPUs to share out, one per worker


def _cancel_flag(work: str):
    """cancelled() for the engine: OUT/.work/CANCEL exists, checked at most every 0.5 s."""
    path, last = os.path.join(work, CANCEL), [0.0, False]

    def cancelled() -> bool:
        now = time.monotonic()
        if now - last[0] >= CANCEL_POLL_S:
            last[0], last[1] = now, os.path.exists(path) or not os.path.isdir(work)
        return last[1]
    return cancelled


def dask_setup(worker) -> None:
    """Preload of the run's own local workers: Ctrl-C in a terminal reaches the whole
    process group, but only the run should act on it (it stops the tiles cleanly), so these
    workers ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_setup(settings: TileSettings) -> None:
    """This worker's GPU (local clusters: worker k takes GPU k mod n, before torch is first
    imported here) and its CPU threads."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        worker = None
    if settings.gpus and "torch" not in sys.modules and worker is not None \
            and isinstance(worker.name, int):
        os.environ["CUDA_VISIBLE_DEVICES"] = str(worker.name % settings.gpus)
    threads = settings.threads
    if threads is None:
        env = os.environ.get("DEMSR_THREADS")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
        per_worker = worker.state.nthreads if worker is not None else 1
        threads = int(env) if env else max(1, cores // per_worker)
    if settings.sr.method == "model":
        from ...backends import set_threads

        set_threads(threads)   # either runtime (core/backends.py); torch is not imported here


def run_tile(job: Job, settings: TileSettings) -> str:
    """Compute one job's output file into OUT; returns its name."""
    from ...raster.gdal_mode import osgeo_gdal
    gdal = osgeo_gdal()

    from ..superresolve import superresolve

    cancelled = _cancel_flag(settings.work)
    if cancelled():
        raise Cancelled("cancelled before this tile started")
    _worker_setup(settings)
    attempt = uuid.uuid4().hex[:8]
    stem = os.path.splitext(job.name)[0]
    crop_path = os.path.join(settings.work, f"{stem}.{attempt}.src.vrt")
    tmp = os.path.join(settings.work, f"{stem}.{attempt}.tif")
    r0, c0, h, w = job.crop
    try:
        gdal.Translate(crop_path, settings.source, format="VRT", srcWin=[c0, r0, w, h],
                       bandList=[settings.band])
        crop = _grid_of(crop_path)
        wr, wc, wh, ww = job.window
        s = grid_factor(settings.src_grid, settings.grid)
        if s:  # the crop's own ×s grid: the network then maps it exactly, as the whole raster's
            grid, window = subdivided(crop, s), (wr - r0 * s, wc - c0 * s, wh, ww)
        else:
            grid, window = settings.grid, (wr, wc, wh, ww)
        device = "cuda" if settings.gpus else settings.sr.device
        superresolve(replace(settings.sr, input_path=crop_path, output_path=tmp, band=1,
                             device=device, grid=grid, window=window),
                     Monitor(cancelled=cancelled))
        os.replace(tmp, os.path.join(settings.out_dir, job.name))
    finally:
        for path in (crop_path, tmp):
            if os.path.exists(path):
                os.remove(path)
    return job.name


def _grid_of(path: str) -> Grid:
    import rasterio

    with rasterio.open(path) as ds:
        return Grid(ds.transform, ds.width, ds.height, ds.crs)
