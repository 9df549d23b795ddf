"""Bringing a reference (or a comparison DEM) onto the grid the evaluation runs on.

Default: the reference goes onto the result's grid. A finer reference is
averaged over each result cell (GDAL "average": what a coarser survey of the
same ground records), a coarser or equally fine one is interpolated bilinearly
(no overshoot), and on the very same grid nothing is resampled. Resampling is
core.raster.warp's GDAL warp.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from ..errors import DemSrError
from ..raster.grid import Grid, same_crs, same_grid
from ..raster.grid import overlap_bounds as grid_overlap
from ..raster.warp import warp

ALIGN_METHODS = ("auto", "average", "bilinear", "cubic", "cubicspline", "lanczos", "nearest")
_TOL = 1e-6  # of a pixel


def auto_method(src: Grid, dst: Grid) -> str:
    """average when the destination cells are coarser than the source's, else bilinear."""
    src_area = _cell_area_in(src, dst)
    dst_area = dst.res[0] * dst.res[1]
    return "average" if dst_area > src_area * (1 + 1e-6) else "bilinear"


def _cell_area_in(src: Grid, dst: Grid) -> float:
    """Area of a source cell in destination CRS units (roughly: from the bounds)."""
    if same_crs(src, dst):
        return src.res[0] * src.res[1]
    left, bottom, right, top = transform_bounds(src.crs, dst.crs, *src.bounds)
    return (right - left) * (top - bottom) / (src.width * src.height)


def overlap_bounds(a: Grid, b: Grid) -> Optional[tuple[float, float, float, float]]:
    """Intersection of b's footprint (in a's CRS) with a's, or None when they do not meet."""
    try:
        return grid_overlap(a, b)
    except ValueError as exc:
        raise DemSrError(f"The reference's CRS cannot be transformed into the DEM's CRS "
                         f"({exc}). Assign the right CRS to both layers.") from None


def bring_onto(data: np.ndarray, src: Grid, dst: Grid, method: str = "auto") -> np.ndarray:
    """`data` (on src) on the dst grid; untouched when the grids are the same."""
    if method not in ALIGN_METHODS:
        raise DemSrError(f"Unknown resampling '{method}'; use one of {', '.join(ALIGN_METHODS)}.")
    if same_grid(src, dst):
        return np.asarray(data, dtype=np.float32)
    method = auto_method(src, dst) if method == "auto" else method
    try:
        return warp(data, src, dst, "cubic_spline" if method == "cubicspline" else method)
    except CRSError as exc:
        raise DemSrError(f"Cannot transform between the two CRSs ({exc}).") from None


def pixel_offset(src: Grid, dst: Grid) -> Optional[tuple[int, int]]:
    """(row, col) of src's top-left cell in dst when src's cells are dst's cells, else None."""
    if not same_crs(src, dst):
        return None
    (sx, sy), (dx, dy) = src.res, dst.res
    if abs(sx - dx) > _TOL * dx or abs(sy - dy) > _TOL * dy:
        return None
    col = (src.transform.c - dst.transform.c) / dx
    row = (dst.transform.f - src.transform.f) / dy
    if abs(col - round(col)) > 1e-4 or abs(row - round(row)) > 1e-4:
        return None
    return int(round(row)), int(round(col))


def place_on(data: np.ndarray, src: Grid, dst: Grid, method: str = "auto") -> np.ndarray:
    """Like bring_onto, but a src made of dst's own cells is pasted, never resampled."""
    off = pixel_offset(src, dst)
    if off is None:
        return bring_onto(data, src, dst, method)
    out = np.full((dst.height, dst.width), np.nan, np.float32)
    r0, c0 = off
    rs, cs = max(0, -r0), max(0, -c0)
    rd, cd = max(0, r0), max(0, c0)
    h = min(src.height - rs, dst.height - rd)
    w = min(src.width - cs, dst.width - cd)
    if h > 0 and w > 0:
        out[rd:rd + h, cd:cd + w] = data[rs:rs + h, cs:cs + w]
    return out
