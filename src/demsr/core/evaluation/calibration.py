"""How well a per-pixel uncertainty (one σ, metres) describes the actual errors.

For a Gaussian error a calibrated σ holds 68.3 % of the errors within 1σ and 95.4 % within
2σ. The reliability table splits the cells into equal-count groups by σ and sets each
group's RMS σ (what was promised) beside its RMSE (what happened); an informative σ puts
the largest errors in the top group (top-10 % ratio: that group's RMSE over the overall).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

GAUSSIAN_WITHIN = {1: 0.683, 2: 0.954}


@dataclass
class Calibration:
    n: int                    # cells with a finite error and σ
    within_1: float           # share of cells with |error| ≤ σ
    within_2: float           # … ≤ 2σ
    rmse: float               # of all cells
    rms_sigma: float          # the RMS of σ: the RMSE it promises
    top10_ratio: float        # RMSE of the 10 % cells with the largest σ / rmse
    bins: list = field(default_factory=list)  # dicts: sigma_lo, sigma_hi, n, rms_sigma,
    #                                           rmse, within_1

    def as_dict(self) -> dict:
        return asdict(self)


def _rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))) if v.size else float("nan")


def calibration(error: np.ndarray, sigma: np.ndarray, groups: int = 10) -> Calibration:
    """Calibration figures of σ for `error` (result − reference); cells where either is
    not finite are left out, σ < 0 is an error."""
    e = np.asarray(error, np.float64).ravel()
    s = np.asarray(sigma, np.float64).ravel()
    ok = np.isfinite(e) & np.isfinite(s)
    e, s = e[ok], s[ok]
    if e.size == 0:
        raise ValueError("no cell has both an error and a σ")
    if np.any(s < 0):
        raise ValueError("σ is negative in some cells")
    a = np.abs(e)
    order = np.argsort(s, kind="stable")  # equal-count groups even where σ ties
    bins = []
    for part in np.array_split(order, min(groups, e.size)):
        bins.append(dict(sigma_lo=float(s[part].min()), sigma_hi=float(s[part].max()),
                         n=int(part.size), rms_sigma=_rms(s[part]), rmse=_rms(e[part]),
                         within_1=float(np.mean(a[part] <= s[part]))))
    top = order[e.size - max(1, e.size // 10):]
    rmse = _rms(e)
    return Calibration(int(e.size), float(np.mean(a <= s)), float(np.mean(a <= 2 * s)), rmse,
                       _rms(s), _rms(e[top]) / rmse if rmse > 0 else float("nan"), bins)
