"""Classical resampling through GDAL's warper, on in-memory arrays; the area average.

Using GDAL itself (not a re-implementation) makes the classical methods
identical to what `gdalwarp -r <method>` gives a QGIS user, and a tile
warped with enough halo equals the same pixels of a whole-raster warp: every warp maps
pixels exactly (`reproject_exact`), where GDAL by default approximates the mapping
across CRSs to 0.125 px over each chunk it warps, so a window would not equal the same
pixels of the whole raster.

The area average between grids of one CRS (GDAL 'average') is the exception:
it is separable, with plain overlaps as weights, so it is two sparse matrices
(`area_weights`, the same weights training differentiates through,
core/training/area.py). It equals gdalwarp -r average within float rounding
(tests) in about 40 % of GDAL's time on the engine's tiles.
"""
from __future__ import annotations

from functools import lru_cache
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
    reproject_exact(np.ascontiguousarray(src, dtype=np.float32), dst,
                    src_transform=src_transform, src_crs=crs, dst_transform=dst_transform,
                    dst_crs=crs, resampling=CLASSICAL_METHODS[method], other_crs=False)
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
        reproject_exact(np.ascontiguousarray(data, dtype=dtype), out,
                        src_transform=src.transform, src_crs=src.crs or LOCAL_CRS,
                        dst_transform=dst.transform,
                        dst_crs=dst.crs if (dst.crs is not None and src.crs is not None) else
                        (src.crs or LOCAL_CRS),
                        resampling=getattr(Resampling, method), src_nodata=nodata,
                        dst_nodata=nodata)
    return out


# GDAL's resampling names where they differ from rasterio's
_GDAL_NAMES = {"nearest": "near", "cubic_spline": "cubicspline"}


def reproject_exact(source, destination: np.ndarray, *, src_transform: Affine, src_crs: CRS,
                    dst_transform: Affine, dst_crs: CRS, resampling: Resampling,
                    src_nodata=None, dst_nodata=None, other_crs: Optional[bool] = None
                    ) -> None:
    """rasterio's reproject (source: an array or a rasterio band) with an exact pixel
    mapping, so a window equals the same pixels of a whole-raster warp in any CRS.
    rasterio 1.3 and 1.4 (Debian 12 and 13) ignore `tolerance=0` and approximate across
    CRSs (1.5, Debian sid, does not: rasterio_maps_exactly); there GDAL's own Python
    bindings (osgeo, which QGIS ships) warp instead. `other_crs`: whether
    the CRSs differ, when the caller knows (comparing CRSs costs GDAL tens of ms)."""
    if other_crs is None:
        other_crs = src_crs != dst_crs
    kw = dict(src_transform=src_transform, src_crs=src_crs, dst_transform=dst_transform,
              dst_crs=dst_crs, resampling=resampling, src_nodata=src_nodata,
              dst_nodata=dst_nodata)
    if not other_crs or rasterio_maps_exactly():   # one CRS: an affine map, always exact
        reproject(source, destination, tolerance=0.0, **kw)
        return
    gdal = _osgeo()
    if gdal is None:      # no osgeo: GDAL's approximation (0.125 px)
        reproject(source, destination, **kw)
        return
    if not isinstance(source, np.ndarray):   # a rasterio band
        source = source.ds.read(source.bidx)
    src = _mem(gdal, np.ascontiguousarray(source), src_transform, src_crs, src_nodata)
    dst = _mem(gdal, destination, dst_transform, dst_crs, dst_nodata)
    opts = gdal.WarpOptions(resampleAlg=_GDAL_NAMES.get(resampling.name, resampling.name),
                            errorThreshold=0.0, srcNodata=src_nodata, dstNodata=dst_nodata,
                            warpOptions=["INIT_DEST=" + ("NO_DATA" if dst_nodata is not None
                                                         else "0")])
    if gdal.Warp(dst, src, options=opts) is None:
        raise DemSrError(f"GDAL could not warp between the grids: {gdal.GetLastErrorMsg()}")
    destination[...] = dst.GetRasterBand(1).ReadAsArray()


def _mem(gdal, array: np.ndarray, transform: Affine, crs: CRS, nodata):
    """An in-memory GDAL dataset holding `array` on its grid."""
    from osgeo import gdal_array

    ds = gdal.GetDriverByName("MEM").Create(
        "", array.shape[1], array.shape[0], 1,
        gdal_array.NumericTypeCodeToGDALTypeCode(array.dtype))
    ds.SetGeoTransform(transform.to_gdal())
    ds.SetProjection(crs.to_wkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(float(nodata))
    band.WriteArray(array)
    return ds


def _osgeo():
    try:
        from .gdal_mode import osgeo_gdal

        return osgeo_gdal()
    except ImportError:
        return None


@lru_cache(maxsize=1)
def rasterio_maps_exactly() -> bool:
    """Whether rasterio's reproject honours tolerance=0 across CRSs: a window of a
    nearest-neighbour warp from geographic to UTM cells equals the same pixels of the whole
    warp only when the mapping is exact (the approximation depends on the chunk)."""
    src = np.arange(200 * 200, dtype=np.float32).reshape(200, 200)
    st = Affine(0.01, 0, 8.0, 0, -0.01, 47.5)
    dt, crs = Affine(500.0, 0, 430000.0, 0, -500.0, 5260000.0), CRS.from_epsg(32632)
    kw = dict(src_transform=st, src_crs=CRS.from_epsg(4326), dst_crs=crs,
              resampling=Resampling.nearest, tolerance=0.0)
    whole = np.zeros((300, 300), np.float32)
    part = np.zeros((97, 131), np.float32)
    with rasterio.Env(**GDAL_ENV):
        reproject(src, whole, dst_transform=dt, **kw)
        reproject(src, part, dst_transform=dt * Affine.translation(37, 53), **kw)
    return bool(np.array_equal(part, whole[53:150, 37:168]))
