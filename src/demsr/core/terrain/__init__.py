"""Terrain derivatives of in-memory DEMs: slope, aspect, curvatures, flow accumulation, streams.

`compute_derivatives` is the one entry point (Processing algorithm, void
repair, training all call it). Arrays are float32 with NaN = nodata.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from ..errors import DemSrError
from ..raster.grid import Grid
from ..monitor import Monitor
from .cellsize import CellSizes, cell_sizes
from .flow import flow_accumulation, streams
from .scaling import Normaliser, NormaliserSet, fit_normaliser
from .surface import SURFACE_DERIVATIVES, surface_derivatives

FLOW_DERIVATIVES = ("flow_accumulation", "streams")
DERIVATIVES = SURFACE_DERIVATIVES + FLOW_DERIVATIVES
# The six inputs of DS-HAT's support stream.
DSHAT_DERIVATIVES = ("slope", "plan_curvature", "profile_curvature", "tangential_curvature",
                     "flow_accumulation", "streams")
DEFAULT_STREAM_THRESHOLD = 1500

__all__ = ["DERIVATIVES", "DSHAT_DERIVATIVES", "DEFAULT_STREAM_THRESHOLD", "CellSizes",
           "Normaliser", "NormaliserSet", "cell_sizes", "compute_derivatives",
           "fit_normaliser"]


def compute_derivatives(dem: np.ndarray, grid: Grid, which: Iterable[str],
                        stream_threshold: float = DEFAULT_STREAM_THRESHOLD,
                        monitor: Optional[Monitor] = None) -> dict[str, np.ndarray]:
    """The requested derivatives of a whole DEM (NaN = nodata), keyed by name.

    Names: slope, aspect, plan_curvature, profile_curvature, tangential_curvature,
    flow_accumulation (cells), streams (1/0 for accumulation ≥ stream_threshold cells).
    """
    monitor = monitor or Monitor()
    which = set(which)
    unknown = which - set(DERIVATIVES)
    if unknown:
        raise DemSrError(f"Unknown terrain derivative(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(DERIVATIVES)}.")
    dem = np.asarray(dem)
    if dem.ndim != 2 or dem.shape != (grid.height, grid.width):
        raise DemSrError(f"The DEM array has shape {dem.shape} but its grid is "
                         f"{grid.height}×{grid.width}.")
    if "streams" in which and not (np.isfinite(stream_threshold) and stream_threshold >= 1):
        raise DemSrError(f"The stream threshold must be at least 1 cell (got {stream_threshold}).")
    if not np.isfinite(dem).any():
        raise DemSrError("The DEM has no valid cells (all nodata): nothing to derive. "
                         "Check the band and its nodata value.")
    sizes = cell_sizes(grid)
    out: dict[str, np.ndarray] = {}
    flow_share = 0.7 if which & set(FLOW_DERIVATIVES) else 0.0
    if which & set(FLOW_DERIVATIVES):
        # First, while no other output holds memory: flow routing needs the most.
        acc = flow_accumulation(dem, sizes, monitor.sub(0.0, flow_share))
        if "streams" in which:
            out["streams"] = streams(acc, stream_threshold)
        if "flow_accumulation" in which:
            out["flow_accumulation"] = acc
        del acc
    surface = which & set(SURFACE_DERIVATIVES)
    if surface:
        out.update(surface_derivatives(dem, sizes, surface, monitor.sub(flow_share, 1.0)))
    monitor.progress(1.0)
    return {name: out[name] for name in DERIVATIVES if name in out}
