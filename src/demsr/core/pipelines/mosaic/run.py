"""Running a mosaic: checks, the work folder OUT/.work, the plan (plan.py), the tiles still
to compute (a rerun skips finished ones) handed to the workers (cluster.py: Dask), and the
VRT, written last. OUT/.work is removed whatever happens."""
from __future__ import annotations

import os
import shutil
import time
from typing import Optional

from ...errors import DemSrError
from ...monitor import Monitor
from . import cluster
from .plan import (WORK, MosaicRequest, MosaicResult, claim_folder, job_grid, plan, source_vrt,
                   tile_done, write_vrt)
from .tile import TileSettings


def run_mosaic(req: MosaicRequest, monitor: Optional[Monitor] = None) -> MosaicResult:
    """Super-resolve the mosaic into req.out_dir: a GeoTIFF per input tile and <name>.vrt."""
    monitor = monitor or Monitor()
    started = time.perf_counter()
    if not req.inputs:
        raise DemSrError("Give the input tiles (or one VRT).")
    if req.workers < 1:
        raise DemSrError("Give at least one worker.")
    if req.sr.grid is not None or req.sr.window is not None:
        raise DemSrError("A mosaic makes its own output grid: leave the grid and window out.")
    if req.sr.uncertainty_path:
        raise DemSrError("A mosaic does not write UNCERTAINTY (every tile would write the same "
                         "file): run Super-resolve DEM with UNCERTAINTY on the merged raster.")
    cluster.require()
    os.makedirs(req.out_dir, exist_ok=True)
    work = os.path.join(req.out_dir, WORK)
    shutil.rmtree(work, ignore_errors=True)  # what a killed run left
    os.makedirs(work)
    try:
        source, band, pieces = source_vrt(req, work)
        src_grid, dst, jobs = plan(req, source, band, pieces)
        claim_folder(req, dst, jobs)
        tiles = [os.path.join(req.out_dir, j.name) for j in jobs]
        todo = [j for j, t in zip(jobs, tiles) if not tile_done(t, job_grid(dst, j))]
        out_px = sum(j.pixels for j in jobs)
        if todo:
            settings = TileSettings(req.sr, source, band, src_grid, dst, work, req.out_dir)
            headline = (f"Mosaic of {len(pieces) or 1} raster(s): output {dst.width}×"
                        f"{dst.height} px in {len(jobs)} tiles ({len(jobs) - len(todo)} "
                        "already done)")
            cluster.compute(req, todo, settings, headline, out_px - sum(j.pixels for j in todo),
                            out_px, monitor)
        vrt = write_vrt(req.out_dir, req.name, [j.name for j in jobs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    monitor.info(f"Wrote {vrt} ({len(jobs)} tiles, {len(todo)} computed) in {seconds:.1f} s.")
    return MosaicResult(vrt, tiles, len(todo), len(jobs) - len(todo), out_px, seconds, dst)
