"""Quality figures for a DEM against a reference, in metres and degrees.

Slope is Horn's 3×3 with real cell sizes (metres per degree on geographic
grids). PSNR uses the reference's own elevation range (max − min of the
valid reference cells) as the peak, because DEMs have no fixed peak; it is
reported, never the headline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from ..terrain.surface import horn_slope


def ssim(a: np.ndarray, b: np.ndarray, data_range: float,
         valid: Optional[np.ndarray] = None) -> float:
    """Mean SSIM with a Gaussian window (σ 1.5), Wang et al. 2004 constants.

    With `valid` (cells to use), local means and variances are normalised
    Gaussian averages of the valid cells only (nodata never enters), and the
    SSIM map is averaged over the valid cells.
    """
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda x: ndimage.gaussian_filter(x, 1.5, mode="reflect")  # noqa: E731
    if valid is not None and not valid.all():
        w = valid.astype(np.float64)
        a, b = np.where(valid, a, 0.0), np.where(valid, b, 0.0)
        norm = np.maximum(blur(w), 1e-12)
        blur_raw = blur
        blur = lambda x: blur_raw(x) / norm  # noqa: E731
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    if valid is not None and not valid.all():
        return float(s[valid].mean())
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


@dataclass
class ElevationErrors:
    """Elevation error statistics (result − reference) in the DEM's vertical unit."""

    rmse: float
    mae: float
    bias: float
    p95: float
    max_abs: float
    n: int


def elevation_errors(pred: np.ndarray, ref: np.ndarray,
                     where: Optional[np.ndarray] = None) -> ElevationErrors:
    """RMSE, MAE, bias, P95 and max of |error| over cells valid in both (and in `where`)."""
    valid = np.isfinite(pred) & np.isfinite(ref)
    if where is not None:
        valid &= where
    err = (pred.astype(np.float64) - ref)[valid]
    if err.size == 0:
        raise ValueError("no cell is valid in both rasters")
    return ElevationErrors(rmse=float(np.sqrt(np.mean(err ** 2))),
                           mae=float(np.mean(np.abs(err))), bias=float(np.mean(err)),
                           p95=float(np.percentile(np.abs(err), 95)),
                           max_abs=float(np.max(np.abs(err))), n=int(err.size))


def rmse(pred: np.ndarray, ref: np.ndarray, where: Optional[np.ndarray] = None) -> float:
    """RMSE over cells finite in both (and in `where`); NaN when there is none."""
    ok = np.isfinite(pred) & np.isfinite(ref)
    if where is not None:
        ok &= where
    if not ok.any():
        return math.nan
    return float(np.sqrt(np.mean((pred[ok].astype(np.float64) - ref[ok]) ** 2)))


def circular_rmse(pred_deg: np.ndarray, ref_deg: np.ndarray,
                  where: Optional[np.ndarray] = None) -> float:
    """RMSE of angles in degrees, each difference wrapped to [−180, 180) (359° vs 1° is 2°)."""
    diff = (pred_deg.astype(np.float64) - ref_deg + 180.0) % 360.0 - 180.0
    return rmse(diff, np.zeros_like(diff), where)


def stream_agreement(pred_streams: np.ndarray, ref_streams: np.ndarray,
                     where: Optional[np.ndarray] = None) -> tuple[float, float]:
    """(recall, precision) of a stream network within one cell.

    recall: share of reference stream cells with a result stream cell in their
    3×3 neighbourhood; precision: share of result stream cells with a reference
    stream cell in theirs. NaN when there is no stream cell to count.
    """
    p, r = pred_streams == 1, ref_streams == 1
    if where is not None:
        p_in, r_in = p & where, r & where
    else:
        p_in, r_in = p, r
    near = np.ones((3, 3), bool)
    recall = (float(np.count_nonzero(r_in & ndimage.binary_dilation(p, near)))
              / np.count_nonzero(r_in)) if r_in.any() else math.nan
    precision = (float(np.count_nonzero(p_in & ndimage.binary_dilation(r, near)))
                 / np.count_nonzero(p_in)) if p_in.any() else math.nan
    return recall, precision


class PooledSquaredError:
    """Squared errors pooled over several comparisons: RMSE = sqrt(sum / count).

    A cell of `where` that is valid in the reference but nodata in the result
    makes the RMSE infinite (a cell that should have been filled was not).
    """

    def __init__(self, pred=None, ref=None, where=None):
        self.sum, self.count = 0.0, 0
        if pred is not None:
            ok = np.isfinite(ref) if where is None else where & np.isfinite(ref)
            if ok.any() and not np.isfinite(pred[ok]).all():
                self.sum = math.inf
            ok &= np.isfinite(pred)
            self.sum += float(np.sum((pred[ok].astype(np.float64) - ref[ok]) ** 2))
            self.count = int(ok.sum())

    def __add__(self, other: "PooledSquaredError") -> "PooledSquaredError":
        out = PooledSquaredError()
        out.sum, out.count = self.sum + other.sum, self.count + other.count
        return out

    @property
    def rmse(self) -> float:
        return math.sqrt(self.sum / self.count) if self.count else math.nan


def compare(pred: np.ndarray, ref: np.ndarray, dx: float, dy: float) -> Errors:
    """Errors of pred against ref on cells valid in both (NaN = nodata)."""
    e = elevation_errors(pred, ref)
    sp, sr = horn_slope(pred, dx, dy), horn_slope(ref, dx, dy)
    sv = np.isfinite(sp) & np.isfinite(sr)
    return Errors(rmse=e.rmse, mae=e.mae, bias=e.bias, p95=e.p95, max_abs=e.max_abs,
                  slope_rmse=float(np.sqrt(np.mean((sp - sr)[sv] ** 2))), n=e.n)


def psnr(pred: np.ndarray, ref: np.ndarray, peak: Optional[float] = None) -> float:
    """PSNR in dB; peak = the reference's elevation range (max − min) unless given."""
    if peak is None:
        peak = float(np.nanmax(ref) - np.nanmin(ref))
    mse = float(np.nanmean((pred.astype(np.float64) - ref) ** 2))
    if mse == 0 or peak == 0:
        return float("inf")
    return 10 * math.log10(peak * peak / mse)


# Every figure Evaluate DEM reports, in table order; units for the report.
METRICS = ("rmse", "mae", "bias", "p95", "max_abs", "slope_rmse", "aspect_rmse",
           "profile_curvature_rmse", "plan_curvature_rmse", "stream_recall",
           "stream_precision", "ssim", "psnr")
UNITS = {"rmse": "m", "mae": "m", "bias": "m", "p95": "m", "max_abs": "m", "slope_rmse": "°",
         "aspect_rmse": "°", "profile_curvature_rmse": "1/m", "plan_curvature_rmse": "1/m",
         "stream_recall": "share", "stream_precision": "share", "ssim": "", "psnr": "dB"}
HIGHER_IS_BETTER = frozenset({"stream_recall", "stream_precision", "ssim", "psnr"})
# The derivatives (core.terrain names) the terrain metrics need.
TERRAIN_INPUTS = ("slope", "aspect", "profile_curvature", "plan_curvature", "streams")


def terrain_metrics(pred: np.ndarray, ref: np.ndarray, pred_terrain: dict, ref_terrain: dict,
                    where: np.ndarray, peak: float) -> dict[str, float]:
    """All METRICS of pred against ref over `where` (cells valid in both).

    *_terrain hold core.terrain.compute_derivatives outputs (TERRAIN_INPUTS).
    Aspect differences are circular and only counted where both have an
    aspect (not flat). PSNR uses `peak`, stated by the caller.
    """
    e = elevation_errors(pred, ref, where)
    out = dict(rmse=e.rmse, mae=e.mae, bias=e.bias, p95=e.p95, max_abs=e.max_abs)
    out["slope_rmse"] = rmse(pred_terrain["slope"], ref_terrain["slope"], where)
    out["aspect_rmse"] = circular_rmse(pred_terrain["aspect"], ref_terrain["aspect"], where)
    for name in ("profile_curvature", "plan_curvature"):
        out[f"{name}_rmse"] = rmse(pred_terrain[name], ref_terrain[name], where)
    out["stream_recall"], out["stream_precision"] = stream_agreement(
        pred_terrain["streams"], ref_terrain["streams"], where)
    ok = where & np.isfinite(pred) & np.isfinite(ref)
    out["ssim"] = ssim(np.where(ok, pred, 0.0), np.where(ok, ref, 0.0), peak, ok)
    out["psnr"] = psnr(pred[ok], ref[ok], peak)
    out["n"] = e.n
    return out
