"""Classical resampling through GDAL's warper, on in-memory arrays.

Using GDAL itself (not a re-implementation) makes the classical methods
identical to what `gdalwarp -r <method>` gives a QGIS user, and a tile
warped with enough halo equals the same pixels of a whole-raster warp.
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


def area_average(src: np.ndarray, src_transform: Affine, dst_shape: tuple[int, int],
                 dst_transform: Affine) -> np.ndarray:
    """A NaN-free float array onto a coarser north-up grid of the same CRS by area average
    (each target cell is the area-weighted mean of the cells it covers, partial cells by
    their overlap: what a coarser sensor sees), with GDAL's 'average' (= gdalwarp -r average).

    Both grids are rebased to the source's pixel units at a fixed offset: no reprojection is
    involved, tiles see the same pixel geometry, and GDAL 3.6 returns zeros for a grid whose
    origin is exactly (0, 0).
    """
    off = 1024.0
    cx = (dst_transform.c - src_transform.c) / src_transform.a
    cy = (dst_transform.f - src_transform.f) / src_transform.e
    src_t = Affine(1.0, 0.0, off, 0.0, -1.0, off)
    dst_t = Affine(dst_transform.a / src_transform.a, 0.0, off + cx,
                   0.0, -dst_transform.e / src_transform.e, off - cy)
    dst = np.zeros(dst_shape, np.float32)
    with rasterio.Env(**GDAL_ENV):
        reproject(np.ascontiguousarray(src, dtype=np.float32), dst,
                  src_transform=src_t, src_crs=LOCAL_CRS, dst_transform=dst_t,
                  dst_crs=LOCAL_CRS, resampling=Resampling.average, tolerance=0.0)
    return dst


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
