"""The classical baselines a QGIS user has, made through the Super-resolve engine.

The low-resolution DEM is the reference degraded by block mean (integer
factor, core.raster.degrade) or GDAL area averaging (any other factor), or
a low-resolution DEM the user gives. It is super-resolved with GDAL Lanczos,
cubic and cubic spline exactly as demsr:superresolve does, and the outputs
are put on the evaluation grid (pasted when their cells are its cells).
"""
from __future__ import annotations

import math
import os
from typing import Callable, Optional, Sequence

import numpy as np
import rasterio

from ..errors import DemSrError
from ..monitor import Monitor
from ..pipelines.superresolve import SuperResolveRequest, superresolve
from ..raster.grid import Grid
from ..raster.io import open_dem, read_band
from ..raster.write import write_array
from ..staging import scratch_folder
from ..raster.degrade import degrade_array
from ..raster.grid import same_crs
from .align import bring_onto, pixel_offset, place_on

# the baselines' scratch folder in the system temp folder; a killed run's is removed by the
# next run (staging.scratch_folder)
SCRATCH_PREFIX = "demsr_eval_"


def degraded_reference(reference: np.ndarray, grid: Grid, factor: float
                       ) -> tuple[np.ndarray, Grid, str]:
    """The reference on a grid `factor` times coarser, anchored at its top-left corner."""
    f = int(round(factor))
    if abs(factor - f) < 1e-9:
        h, w = (reference.shape[0] // f) * f, (reference.shape[1] // f) * f
        if h == 0 or w == 0:
            raise DemSrError(f"The evaluated area ({grid.width}×{grid.height} cells) is smaller "
                             f"than one low-resolution cell at factor {f}.")
        t = grid.transform
        lgrid = Grid(t * t.scale(f), w // f, h // f, grid.crs)
        try:
            lr = degrade_array(reference[:h, :w], f, "blockmean")  # as training and scripts
        except ImportError:  # no torch: GDAL's average of each f×f block is the same mean
            lr = bring_onto(reference[:h, :w], Grid(t, w, h, grid.crs), lgrid, "average")
        return lr, lgrid, f"block mean ×{f}"
    w, h = int(grid.width // factor), int(grid.height // factor)
    if h == 0 or w == 0:
        raise DemSrError(f"The evaluated area is smaller than one low-resolution cell at "
                         f"factor {factor:g}.")
    t = grid.transform
    lgrid = Grid(t * t.scale(factor), w, h, grid.crs)
    return bring_onto(reference, grid, lgrid, "average"), lgrid, f"area average ×{factor:g}"


def classical_baselines(reference: np.ndarray, grid: Grid, factor: float,
                        low_res_path: Optional[str], methods: Sequence[str],
                        monitor: Optional[Monitor] = None,
                        warn: Callable[[str], None] = lambda _m: None) -> dict[str, np.ndarray]:
    """{label: DEM on `grid`} for each classical method, e.g. 'GDAL lanczos (block mean ×2)'."""
    monitor = monitor or Monitor()
    with scratch_folder(SCRATCH_PREFIX) as tmp:
        if low_res_path:
            lr_path, how = low_res_path, "from LOW_RES"
            lr = open_dem(low_res_path)
            if not same_crs(lr.grid, grid):
                raise DemSrError("The low-resolution DEM must be in the CRS of the evaluation "
                                 "grid (warp it first).")
            scale = lr.grid.res[0] / grid.res[0]
            if not math.isfinite(scale) or scale <= 1:
                raise DemSrError(f"The low-resolution DEM's cells ({lr.grid.res[0]:g}) are not "
                                 f"coarser than the evaluation grid's ({grid.res[0]:g}).")
        else:
            data, lgrid, how = degraded_reference(reference, grid, factor)
            if not np.isfinite(data).any():
                raise DemSrError("The degraded reference has no valid cell.")
            lr_path = os.path.join(tmp, "lr.tif")
            write_array(lr_path, data, lgrid)
            scale = factor
        monitor.info(f"Classical baselines: {how}, super-resolved ×{scale:.4g} by the "
                     "Super-resolve engine.")
        out: dict[str, np.ndarray] = {}
        for i, method in enumerate(methods):
            monitor.check()
            path = os.path.join(tmp, f"{method}.tif")
            # A square target pixel size gives the evaluation grid's cells exactly.
            square = abs(grid.res[0] - grid.res[1]) <= 1e-9 * grid.res[0]
            res = superresolve(SuperResolveRequest(lr_path, path, scale=scale, method=method,
                                                   target_resolution=grid.res[0] if square
                                                   else None),
                               monitor.sub(i / len(methods), (i + 1) / len(methods)))
            with rasterio.open(path) as ds:
                data = read_band(ds, 1)
            label = f"GDAL {method} ({how})"
            if pixel_offset(res.grid, grid) is None:
                warn(f"{label}: its grid is not made of the evaluation grid's cells; it was "
                     "resampled onto it (bilinear), which smooths it slightly.")
            out[label] = place_on(data, res.grid, grid, "bilinear")
    return out

