"""Raster grids: output grid of a super-resolution and the pixel mapping between grids."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from affine import Affine

from ..errors import DemSrError

MAX_SCALE = 16.0  # beyond this a DEM has no information left to add


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: geotransform, size and CRS (a rasterio CRS or None)."""

    transform: Affine
    width: int
    height: int
    crs: Optional[object] = None

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        t = self.transform
        x0, y0 = t.c, t.f
        x1, y1 = t * (self.width, self.height)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    @property
    def is_geographic(self) -> bool:
        return bool(self.crs is not None and getattr(self.crs, "is_geographic", False))

    def window_transform(self, row_off: int, col_off: int) -> Affine:
        return self.transform * Affine.translation(col_off, row_off)


def require_north_up(transform: Affine, what: str = "The input raster") -> None:
    if transform == Affine.identity():  # what GDAL reports for a file without georeference
        raise DemSrError(
            f"{what} has no georeference (no position and no pixel size: a picture, or a "
            "raster whose world file or .aux.xml is missing). Give a georeferenced DEM "
            "(e.g. a GeoTIFF), or georeference it first (Raster ▸ Georeferencer).")
    if transform.b != 0 or transform.d != 0:
        raise DemSrError(
            f"{what} has a rotated or sheared geotransform, which is not supported. "
            "Warp it to a north-up grid first (Raster ▸ Projections ▸ Warp)."
        )
    if transform.a <= 0 or transform.e >= 0:
        raise DemSrError(
            f"{what} is not north-up (pixel size x={transform.a}, y={transform.e}). "
            "Warp it to a north-up grid first (Raster ▸ Projections ▸ Warp)."
        )


def at_resolution(src: Grid, resolution: float) -> Grid:
    """src's extent at a square pixel size: pixel count rounded, anchored at the top-left
    corner (as gdalwarp -tr)."""
    resx, resy = src.res
    width = max(1, int(round(src.width * resx / resolution)))
    height = max(1, int(round(src.height * resy / resolution)))
    return Grid(Affine(resolution, 0, src.transform.c, 0, -resolution, src.transform.f),
                width, height, src.crs)


def output_grid(src: Grid, scale: Optional[float] = None,
                target_resolution: Optional[float] = None) -> Grid:
    """The grid a super-resolution writes to.

    With a scale the extent is kept exactly and the pixel count is the
    input's times the scale, rounded; with a target resolution the pixel size
    is exact and the pixel count rounded, anchored at the top-left corner (as
    gdalwarp -tr does).
    """
    resx, resy = src.res
    if target_resolution is not None and target_resolution > 0:
        _check_target(src, target_resolution)
        factor = max(resx, resy) / target_resolution
        _check_factor(factor, f"target resolution {target_resolution:g}")
        return _adds_cells(src, at_resolution(src, target_resolution),
                           f"TARGET_RESOLUTION {target_resolution:.10g}")
    if scale is None:
        raise DemSrError("Give a scale factor or a target resolution.")
    _check_factor(scale, f"scale {scale:g}")
    width = max(1, int(round(src.width * scale)))
    height = max(1, int(round(src.height * scale)))
    transform = Affine(src.width * resx / width, 0, src.transform.c,
                       0, -src.height * resy / height, src.transform.f)
    return _adds_cells(src, Grid(transform, width, height, src.crs), f"SCALE {scale:.10g}")


def _check_target(src: Grid, target: float) -> None:
    """A target pixel size is a finite number, and with non-square input pixels it does not
    refine one axis while coarsening the other without a word."""
    if not math.isfinite(target):
        raise DemSrError(f"The target pixel size {target} is not a finite number. Give a pixel "
                         "size in the CRS units of the input (e.g. 5 for 5 m).")
    resx, resy = src.res
    lo, hi = min(resx, resy), max(resx, resy)
    if lo * (1 + 1e-9) < target < hi * (1 - 1e-9):
        coarse = "rows" if resy < resx else "columns"
        raise DemSrError(
            f"The input's pixels are not square ({resx:.6g} × {resy:.6g} CRS units): a target "
            f"pixel size of {target:.6g} would refine one axis and coarsen the other (its "
            f"{coarse} would be merged). Give a size below {lo:.6g} to refine both, or first "
            "resample the input to square pixels (Raster ▸ Projections ▸ Warp, or gdalwarp "
            "-tr).")


def _adds_cells(src: Grid, dst: Grid, what: str) -> Grid:
    """Refuse a 'finer' grid that rounds to the input's own cell counts: a copy, not a
    super-resolution."""
    if (dst.width, dst.height) == (src.width, src.height):
        raise DemSrError(f"{what} adds no cell to the {src.width}×{src.height} input: the output "
                         "would be a copy on the same grid. Give a factor that adds cells (e.g. "
                         "SCALE 2), or a smaller target pixel size.")
    return dst


def _check_factor(factor: float, what: str) -> None:
    if not math.isfinite(factor) or factor <= 1.0:
        raise DemSrError(
            f"The {what} does not make the grid finer (factor {factor:.4g}). "
            "Super-resolution needs a factor above 1: use a scale > 1 or a target "
            "resolution smaller than the input's pixel size."
        )
    if factor > MAX_SCALE:
        raise DemSrError(
            f"The {what} asks for a {factor:.4g}× finer grid; at most {MAX_SCALE:g}× is "
            "supported, because a DEM holds no detail to recover beyond that. Use a "
            "smaller factor or super-resolve in steps."
        )


def source_coords(src: Grid, dst: Grid, rows: np.ndarray, cols: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Fractional source pixel coordinates (row, col) of destination pixel centres.

    A source pixel k spans [k, k+1), so floor() of the result is the source
    pixel that contains the centre.
    """
    x = dst.transform.c + (np.asarray(cols, dtype=np.float64) + 0.5) * dst.transform.a
    y = dst.transform.f + (np.asarray(rows, dtype=np.float64) + 0.5) * dst.transform.e
    src_cols = (x - src.transform.c) / src.transform.a
    src_rows = (y - src.transform.f) / src.transform.e
    return src_rows, src_cols


def source_index(src: Grid, dst: Grid, rows: np.ndarray, cols: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Integer source pixel containing each destination centre (may be out of range)."""
    r, c = source_coords(src, dst, rows, cols)
    return np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)


def grid_factor(src: Grid, dst: Grid) -> Optional[int]:
    """The integer s when dst is exactly src subdivided s×s, else None."""
    fx, fy = src.res[0] / dst.res[0], src.res[1] / dst.res[1]
    s = int(round(fx))
    if s < 2 or abs(fx - s) > 1e-6 * s or abs(fy - s) > 1e-6 * s:
        return None
    ox = (dst.transform.c - src.transform.c) / dst.res[0]
    oy = (dst.transform.f - src.transform.f) / dst.res[1]
    if abs(ox) > 1e-6 or abs(oy) > 1e-6:
        return None
    return s


def subdivided(src: Grid, s: int) -> Grid:
    """src with every cell split s×s (same extent and CRS): a ×s model's output grid."""
    return Grid(src.transform * Affine.scale(1.0 / s), src.width * s, src.height * s, src.crs)


def grid_ratio(src: Grid, dst: Grid) -> float:
    """How many times finer dst's pixels are than src's (the smaller of x and y; same CRS)."""
    return min(src.res[0] / dst.res[0], src.res[1] / dst.res[1])


def same_crs(a: Grid, b: Grid) -> bool:
    """Whether no reprojection is needed (a missing CRS matches any)."""
    return a.crs is None or b.crs is None or a.crs == b.crs


def same_grid(a: Grid, b: Grid) -> bool:
    ta, tb = a.transform, b.transform
    tol = 1e-9 * max(abs(ta.a), abs(ta.e))
    return ((a.width, a.height) == (b.width, b.height)
            and all(abs(x - y) <= tol * 1e3 for x, y in zip(ta[:6], tb[:6]))
            and same_crs(a, b))


def is_finer(src: Grid, dst: Grid) -> bool:
    """Whether dst's pixels are not larger than src's (in dst's units)."""
    if same_crs(src, dst):
        return dst.res[0] <= src.res[0] * (1 + 1e-9)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(src.crs, dst.crs, *src.bounds)
    return dst.res[0] <= (right - left) / src.width * (1 + 1e-9)


def target_grid(src: Grid, reference: Optional[Grid] = None,
                target_resolution: Optional[float] = None) -> Grid:
    """Void repair's output grid: a reference raster's grid, src's extent at a pixel size
    (finer or coarser), or src itself."""
    if reference is not None:
        return reference
    if target_resolution is None or target_resolution <= 0:
        return src
    _check_target(src, target_resolution)
    resx, resy = src.res
    if max(abs(target_resolution - resx) / resx, abs(target_resolution - resy) / resy) <= 1e-9:
        return src
    if max(resx, resy) / target_resolution > 1.0:
        return output_grid(src, target_resolution=target_resolution)
    return at_resolution(src, target_resolution)


def overlap_bounds(a: Grid, b: Grid) -> Optional[tuple[float, float, float, float]]:
    """Intersection of b's footprint (in a's CRS) with a's, or None when they do not meet.
    Raises ValueError (with PROJ's reason) when b's extent cannot be brought into a's CRS."""
    if same_crs(a, b):
        bb = b.bounds
    else:
        from rasterio.warp import transform_bounds

        try:
            bb = transform_bounds(b.crs, a.crs, *b.bounds)
        except Exception as exc:  # noqa: BLE001 - PROJ errors surface as several types
            raise ValueError(str(exc)) from None
        if not all(math.isfinite(v) for v in bb):
            raise ValueError("the transformed extent is not finite")
    ab = a.bounds
    left, bottom = max(ab[0], bb[0]), max(ab[1], bb[1])
    right, top = min(ab[2], bb[2]), min(ab[3], bb[3])
    if right <= left or top <= bottom:
        return None
    return left, bottom, right, top
