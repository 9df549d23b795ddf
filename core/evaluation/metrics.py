"""Quality figures for a DEM against a reference, in metres and degrees.

Slope is Horn's 3×3 with real cell sizes (metres per degree on geographic
grids). PSNR uses the reference's own elevation range (max − min of the
valid reference cells) as the peak, because DEMs have no fixed peak; it is
reported, never the headline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..terrain.cellsize import CellSizes, metres_per_degree
from ..terrain.surface import surface_derivatives


def cell_size_m(res: tuple[float, float], geographic: bool, lat: float = 0.0
                ) -> tuple[float, float]:
    """Cell size in metres (x, y); on geographic grids at latitude `lat` (WGS 84)."""
    if not geographic:
        return float(res[0]), float(res[1])
    per_lon, per_lat = metres_per_degree(np.array([lat]))
    return float(res[0] * per_lon[0]), float(res[1] * per_lat[0])


def horn_slope(dem: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Slope in degrees: Terrain derivatives' Horn slope, one cell size for the whole array."""
    rows = dem.shape[0]
    sizes = CellSizes(np.full(rows, float(dx)), np.full(rows, float(dy)))
    return surface_derivatives(dem, sizes, {"slope"})["slope"]


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean SSIM with a Gaussian window (σ 1.5), Wang et al. 2004 constants."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda x: ndimage.gaussian_filter(x, 1.5, mode="reflect")  # noqa: E731
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


@dataclass
class Errors:
    rmse: float
    mae: float
    bias: float
    p95: float
    max_abs: float
    slope_rmse: float
    n: int


def compare(pred: np.ndarray, ref: np.ndarray, dx: float, dy: float) -> Errors:
    """Errors of pred against ref on cells valid in both (NaN = nodata)."""
    valid = np.isfinite(pred) & np.isfinite(ref)
    err = (pred.astype(np.float64) - ref)[valid]
    sp, sr = horn_slope(pred, dx, dy), horn_slope(ref, dx, dy)
    sv = np.isfinite(sp) & np.isfinite(sr)
    if err.size == 0:
        raise ValueError("no cell is valid in both rasters")
    return Errors(rmse=float(np.sqrt(np.mean(err ** 2))), mae=float(np.mean(np.abs(err))),
                  bias=float(np.mean(err)), p95=float(np.percentile(np.abs(err), 95)),
                  max_abs=float(np.max(np.abs(err))),
                  slope_rmse=float(np.sqrt(np.mean((sp - sr)[sv] ** 2))), n=int(err.size))


def psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB with the reference's elevation range as peak."""
    peak = float(np.nanmax(ref) - np.nanmin(ref))
    mse = float(np.nanmean((pred.astype(np.float64) - ref) ** 2))
    if mse == 0 or peak == 0:
        return float("inf")
    return 10 * math.log10(peak * peak / mse)
