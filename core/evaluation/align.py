"""Bringing a reference (or a comparison DEM) onto the grid the evaluation runs on.

Default: the reference goes onto the result's grid. A finer reference is
averaged over each result cell (GDAL "average": what a coarser survey of the
same ground records), a coarser or equally fine one is interpolated bilinearly
(no overshoot), and on the very same grid nothing is resampled. `_warp` is the
only place that resamples, so it can be swapped for core.raster.warp's GDAL
warp in one line.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.warp import reproject, transform_bounds

from ..errors import DemSrError
from ..raster.grid import Grid

ALIGN_METHODS = ("auto", "average", "bilinear", "cubic", "cubicspline", "lanczos", "nearest")
_RESAMPLING = {"average": Resampling.average, "bilinear": Resampling.bilinear,
               "cubic": Resampling.cubic, "cubicspline": Resampling.cubic_spline,
               "lanczos": Resampling.lanczos, "nearest": Resampling.nearest}
_LOCAL_CRS = CRS.from_wkt('LOCAL_CS["unknown",UNIT["metre",1]]')
_TOL = 1e-6  # of a pixel


def _warp(data: np.ndarray, src_grid: Grid, dst_grid: Grid, method: str) -> np.ndarray:
    """GDAL warp of a float array (NaN = nodata) onto dst_grid; NaN where nothing maps."""
    src_crs, dst_crs = src_grid.crs or dst_grid.crs or _LOCAL_CRS, dst_grid.crs or src_grid.crs \
        or _LOCAL_CRS
    out = np.full((dst_grid.height, dst_grid.width), np.nan, np.float32)
    try:
        reproject(np.ascontiguousarray(data, dtype=np.float32), out,
                  src_transform=src_grid.transform, src_crs=src_crs, src_nodata=np.nan,
                  dst_transform=dst_grid.transform, dst_crs=dst_crs, dst_nodata=np.nan,
                  resampling=_RESAMPLING[method])
    except CRSError as exc:
        raise DemSrError(f"Cannot transform between the two CRSs ({exc}).") from None
    return out


def same_grid(a: Grid, b: Grid) -> bool:
    """Same size, same pixel corners (within 1e-6 px) and the same CRS."""
    if (a.width, a.height) != (b.width, b.height) or not crs_equal(a.crs, b.crs):
        return False
    ta, tb = a.transform, b.transform
    rx, ry = a.res
    return (abs(ta.a - tb.a) <= _TOL * rx and abs(ta.e - tb.e) <= _TOL * ry
            and abs(ta.c - tb.c) <= _TOL * rx and abs(ta.f - tb.f) <= _TOL * ry)


def crs_equal(a, b) -> bool:
    """Equal CRSs; a missing CRS matches anything (it is taken to be the other's)."""
    return a is None or b is None or a == b


def auto_method(src: Grid, dst: Grid) -> str:
    """average when the destination cells are coarser than the source's, else bilinear."""
    src_area = _cell_area_in(src, dst)
    dst_area = dst.res[0] * dst.res[1]
    return "average" if dst_area > src_area * (1 + 1e-6) else "bilinear"


def _cell_area_in(src: Grid, dst: Grid) -> float:
    """Area of a source cell in destination CRS units (roughly: from the bounds)."""
    if crs_equal(src.crs, dst.crs):
        return src.res[0] * src.res[1]
    left, bottom, right, top = transform_bounds(src.crs, dst.crs, *src.bounds)
    return (right - left) * (top - bottom) / (src.width * src.height)


def overlap_bounds(a: Grid, b: Grid) -> Optional[tuple[float, float, float, float]]:
    """Intersection of b's footprint (in a's CRS) with a's, or None when they do not meet."""
    try:
        bb = b.bounds if crs_equal(a.crs, b.crs) else transform_bounds(b.crs, a.crs, *b.bounds)
    except (CRSError, Exception) as exc:  # PROJ errors surface as several types
        raise DemSrError(f"The reference's CRS cannot be transformed into the DEM's CRS "
                         f"({exc}). Assign the right CRS to both layers.") from None
    if not all(math.isfinite(v) for v in bb):
        raise DemSrError("The reference's extent cannot be transformed into the DEM's CRS. "
                         "Assign the right CRS to both layers.")
    ab = a.bounds
    left, bottom = max(ab[0], bb[0]), max(ab[1], bb[1])
    right, top = min(ab[2], bb[2]), min(ab[3], bb[3])
    if right <= left or top <= bottom:
        return None
    return left, bottom, right, top


def bring_onto(data: np.ndarray, src: Grid, dst: Grid, method: str = "auto") -> np.ndarray:
    """`data` (on src) on the dst grid; untouched when the grids are the same."""
    if method not in ALIGN_METHODS:
        raise DemSrError(f"Unknown resampling '{method}'; use one of {', '.join(ALIGN_METHODS)}.")
    if same_grid(src, dst):
        return np.asarray(data, dtype=np.float32)
    return _warp(data, src, dst, auto_method(src, dst) if method == "auto" else method)


def pixel_offset(src: Grid, dst: Grid) -> Optional[tuple[int, int]]:
    """(row, col) of src's top-left cell in dst when src's cells are dst's cells, else None."""
    if not crs_equal(src.crs, dst.crs):
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
