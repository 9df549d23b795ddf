"""Classical resampling through GDAL's warper, on in-memory arrays; the area average.

Using GDAL itself (not a re-implementation) makes the classical methods
identical to what `gdalwarp -r <method>` gives a QGIS user, and a tile
warped with enough halo equals the same pixels of a whole-raster warp.

The area average between grids of one CRS (GDAL 'average') is the exception:
it is separable, with plain overlaps as weights, so it is two sparse matrices
(`area_weights`, the same weights training differentiates through,
core/training/area.py). It equals gdalwarp -r average within float rounding
(tests) in about 40 % of GDAL's time on the engine's tiles.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

from ..errors import DemSrError
from .grid import Grid
from .io import GDAL_ENV

CLASSICAL_METHODS = {
    "lanczos": Resampling.lanczos,
    "cubicspline": Resampling.cubic_spline,
    "cubic": Resampling.cubic,
    "bilinear": Resampling.bilinear,
}
# Source pixels each side that the kernel reads when upsampling.
KERNEL_RADIUS = {"lanczos": 3, "cubicspline": 2, "cubic": 2, "bilinear": 1}
# Stand-in for rasters without a CRS: same CRS on both sides means no reprojection.
LOCAL_CRS = CRS.from_wkt('LOCAL_CS["unknown",UNIT["metre",1]]')


def check_method(method: str) -> None:
    if method not in CLASSICAL_METHODS:
        raise DemSrError(f"Unknown resampling method '{method}'. Use one of: "
                         + ", ".join(CLASSICAL_METHODS))


def resample(src: np.ndarray, src_transform: Affine, dst_shape: tuple[int, int],
             dst_transform: Affine, method: str, crs: Optional[CRS] = None) -> np.ndarray:
    """Warp a NaN-free float array onto another north-up grid of the same CRS."""
    check_method(method)
    crs = crs or LOCAL_CRS
    dst = np.zeros(dst_shape, np.float32)
    reproject(np.ascontiguousarray(src, dtype=np.float32), dst,
              src_transform=src_transform, src_crs=crs,
              dst_transform=dst_transform, dst_crs=crs,
              resampling=CLASSICAL_METHODS[method],
              tolerance=0.0)  # exact pixel mapping, not GDAL's 0.125-px approximation
    return dst


def area_weights(n_src: int, n_dst: int, ratio: float, offset: float = 0.0,
                 dtype=np.float64):
    """(n_dst, n_src) sparse weights (scipy CSR): target cell i covers source cells
    [offset + i·ratio, offset + (i+1)·ratio) (source pixel units, ratio ≥ 1 = each target
    cell is `ratio` source cells wide); each weight is the overlap, rows normalised to sum 1
    (parts of a target cell beyond the source are ignored, as GDAL does)."""
    from scipy import sparse

    if ratio <= 0 or n_src < 1 or n_dst < 1:
        raise ValueError("area weights need a positive ratio and non-empty grids")
    lo = offset + np.arange(n_dst, dtype=np.float64)[:, None] * ratio
    hi = lo + ratio
    j = np.floor(lo) + np.arange(int(np.ceil(ratio)) + 2, dtype=np.float64)[None, :]
    w = np.clip(np.minimum(hi, j + 1.0) - np.maximum(lo, j), 0.0, None)
    w[(w < 1e-12) | (j < 0) | (j >= n_src)] = 0.0  # round-off slivers; beyond the source
    total = w.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("a target cell lies outside the source grid")
    w /= total
    rows, k = np.nonzero(w)
    return sparse.csr_matrix((w[rows, k].astype(dtype), (rows, j[rows, k].astype(np.int64))),
                             shape=(n_dst, n_src))


def area_average(src: np.ndarray, src_transform: Affine, dst_shape: tuple[int, int],
                 dst_transform: Affine) -> np.ndarray:
    """A NaN-free float array onto a coarser north-up grid of the same CRS by area average
    (each target cell is the area-weighted mean of the cells it covers, partial cells by
    their overlap: what a coarser sensor sees), = gdalwarp -r average: A_y @ src @ A_xᵀ,
    in float32 around the array's mean (rounding then scales with the relief, not with the
    elevation)."""
    a_y = area_weights(src.shape[0], dst_shape[0], dst_transform.e / src_transform.e,
                       (dst_transform.f - src_transform.f) / src_transform.e, np.float32)
    a_x = area_weights(src.shape[1], dst_shape[1], dst_transform.a / src_transform.a,
                       (dst_transform.c - src_transform.c) / src_transform.a, np.float32)
    base = float(np.mean(src, dtype=np.float64))
    rows = a_y @ (np.asarray(src, np.float32) - np.float32(base))
    return np.ascontiguousarray(rows @ a_x.T, dtype=np.float32) + np.float32(base)


def warp(data: np.ndarray, src: Grid, dst: Grid, method: str, nodata: float = np.nan,
         dtype=np.float32) -> np.ndarray:
    """Warp one band onto dst (any CRS, any GDAL method name); cells beyond the source or
    on nodata get `nodata`."""
    out = np.full((dst.height, dst.width), nodata, dtype)
    with rasterio.Env(**GDAL_ENV):
        reproject(np.ascontiguousarray(data, dtype=dtype), out,
                  src_transform=src.transform, src_crs=src.crs or LOCAL_CRS,
                  dst_transform=dst.transform,
                  dst_crs=dst.crs if (dst.crs is not None and src.crs is not None) else
                  (src.crs or LOCAL_CRS),
                  resampling=getattr(Resampling, method), src_nodata=nodata,
                  dst_nodata=nodata, tolerance=0.0)
    return out
