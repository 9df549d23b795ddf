"""The expected error of Void repair's classical fills (METHOD=fill and METHOD=delta), per
filled cell, as one standard deviation in metres: the UNCERTAINTY output of Void repair.

Both read only the void group's own window (the one the fill reads,
core.nodata.inpaint.void_groups), so σ is local to each void group and a streamed run equals
a whole-raster one.

- fill: the biharmonic fill continues the slopes around a void, so it errs by how far the
  terrain departs from a plane over the distance d (cells) of a filled cell from the nearest
  known one: σ = k_fill · sqrt(γ₂(d)), γ₂(h) = A·h^(2H) fitted (log-log least squares, H
  clipped to H_RANGE) to the second-order semivariogram ½·mean((z(x−h) − 2z(x) + z(x+h))²)
  of the window's known cells along rows and columns at lags 1, 2, 4, … up to the window's
  size. (The plain semivariogram of z promises a plane's slope as error: on the training
  DEMs it put 37–93 % of a DEM's cells within 1σ, against 57–78 % for this one.)
- delta: the DEM − auxiliary difference interpolated across the void errs by the detail the
  auxiliary lacks; measured, that error does not grow with the distance beyond two cells
  (cells next to the rim err about 0.75× as much) nor with the void's size, but follows
  the local amplitude of the difference. So σ = k_delta · sqrt(v(x) · min(d, NEAR_RIM)),
  v the local variance of the difference over LOCAL_BOX² known cells, interpolated across
  the void as the difference itself is (harmonically, core.nodata.inpaint.fill_window).
  Cells the auxiliary does not cover take the first fill, and its σ.
- model (DS-HAT on the input grid) corrects the first fill by little and takes its σ
  (core.pipelines.voidfill.first_fill_sigma).

k per method was fitted on the training DEMs with synthetic radar-like voids (and, for
delta, the synthetic auxiliary of scripts/evaluate_voids.py), never on the validation DEMs,
so that 68.3 % of the pooled filled cells lie within 1σ (scripts/uncertainty.py voids fit;
resources/models/demsr_void_uncertainty.json). Calibration: docs/quality.md (Void repair
uncertainty).
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import numpy as np
from scipy import ndimage

from ..errors import DemSrError
from ..nodata.inpaint import fill_window

METHODS = ("fill", "delta")
H_RANGE = (0.05, 1.0)     # roughness exponent of γ₂
MIN_PAIRS = 8             # differences of known cells a lag needs to count
LOCAL_BOX = 5             # cells across which delta's local variance is taken
NEAR_RIM = 2.0            # cells from the rim beyond which the delta error stops growing
COEFFICIENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models", "demsr_void_uncertainty.json")


def semivariogram2(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lags, γ₂): ½·mean of the squared second differences of the finite cells of `field`
    along rows and columns at lags 1, 2, 4, … up to the window's size; lags with fewer than
    MIN_PAIRS differences are left out."""
    lags, gamma = [], []
    h = 1
    while 2 * h < max(field.shape):
        parts = []
        if field.shape[1] > 2 * h:
            parts.append((field[:, 2 * h:] - 2 * field[:, h:-h] + field[:, :-2 * h]).ravel())
        if field.shape[0] > 2 * h:
            parts.append((field[2 * h:] - 2 * field[h:-h] + field[:-2 * h]).ravel())
        d = np.concatenate(parts)
        d = d[np.isfinite(d)]
        if d.size >= MIN_PAIRS:
            lags.append(h)
            gamma.append(0.5 * float(np.mean(d * d)))
        h *= 2
    return np.asarray(lags, np.float64), np.asarray(gamma, np.float64)


def power_law(lags: np.ndarray, gamma: np.ndarray) -> tuple[float, float]:
    """(A, H) of γ(h) = A·h^(2H) fitted in log-log (H clipped to H_RANGE); A = 0 when the
    field does not vary, or when no lag has enough differences to say."""
    ok = gamma > 0
    if not ok.any():
        return 0.0, 0.5
    x, y = np.log(lags[ok]), np.log(gamma[ok])
    if x.size == 1:
        return float(gamma[ok][0] / lags[ok][0]), 0.5     # Brownian through the one lag
    H = float(np.clip(np.polyfit(x, y, 1)[0] / 2.0, *H_RANGE))
    # the level that best fits the points with H fixed (the clipped slope included)
    return float(np.exp(np.mean(y - 2.0 * H * x))), H


def _distance(field: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Distance (cells) of `cells` from the nearest finite cell of `field`."""
    return ndimage.distance_transform_edt(~np.isfinite(field))[cells]


def fill_sigma(field: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """sqrt(γ₂(d)) (k = 1) for `cells` (in field[cells] order); `field`: the DEM's window,
    NaN where unknown (the cells being filled included)."""
    A, H = power_law(*semivariogram2(field))
    return np.sqrt(A) * _distance(field, cells) ** H


def _box(a: np.ndarray) -> np.ndarray:
    w = np.full(LOCAL_BOX, 1.0 / LOCAL_BOX)
    return ndimage.correlate1d(ndimage.correlate1d(a, w, 0, mode="constant"), w, 1,
                               mode="constant")


def local_variance(field: np.ndarray) -> np.ndarray:
    """The variance of the finite cells of `field` over LOCAL_BOX² cells around each finite
    cell (NaN elsewhere)."""
    known = np.isfinite(field)
    if not known.any():     # e.g. the auxiliary has no data around this void
        return np.full(field.shape, np.nan)
    f0 = np.where(known, field - np.mean(field[known]), 0.0)
    n = np.maximum(_box(known.astype(np.float64)), 1e-12)
    mean = _box(f0) / n
    return np.where(known, np.clip(_box(f0 * f0) / n - mean * mean, 0.0, None), np.nan)


def delta_sigma(diff: np.ndarray, cells: np.ndarray, v: Optional[np.ndarray] = None
                ) -> np.ndarray:
    """sqrt(v(x)·min(d, NEAR_RIM)) (k = 1) for `cells` (in diff[cells] order); `diff`: DEM −
    auxiliary on the window, NaN where either is unknown (the cells being filled included);
    `v`: local_variance(diff) across the void when the delta fill's solve gave it."""
    if v is None:
        v = fill_window(local_variance(diff), cells, biharmonic=False)
    return np.sqrt(np.clip(v, 0.0, None) * np.minimum(_distance(diff, cells), NEAR_RIM))


def load_coefficients(path: Optional[str] = None) -> dict:
    """{method: k} and what they were fitted on (the bundled JSON unless `path`)."""
    path = path or COEFFICIENTS
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        k = {m: float(data["methods"][m]["k"]) for m in METHODS}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DemSrError(f"The void-repair uncertainty calibration '{path}' cannot be read "
                         f"({exc}); reinstall the plugin, or run scripts/uncertainty.py voids "
                         "fit.") from None
    return {"k": k, "meta": {key: v for key, v in data.items() if key != "methods"}}


class VoidSigma:
    """σ of each filled cell of a void group's window, as the classical fills fill it;
    `seconds` adds up the time spent here (the cost of UNCERTAINTY)."""

    def __init__(self, k: Optional[dict] = None):
        self.k = dict(k or load_coefficients()["k"])
        self.seconds = 0.0

    def delta_field(self, z: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """What the delta fill carries across a void for σ (delta_fill's `also`): the local
        variance of DEM − auxiliary on window `z` (NaN = absent or unknown)."""
        t0 = time.perf_counter()
        v = local_variance(z - aux)
        self.seconds += time.perf_counter() - t0
        return v

    def window(self, z: np.ndarray, unknown: np.ndarray, aux: Optional[np.ndarray] = None,
               from_aux: Optional[np.ndarray] = None,
               delta_variance: Optional[np.ndarray] = None) -> np.ndarray:
        """σ (float32) for the unknown cells of window `z` (NaN = absent or unknown), in
        z[unknown] order; with `aux` (the auxiliary on the window) the cells `from_aux`
        (in the same order) take the delta fill's σ, the others the first fill's.
        `delta_variance`: delta_fill's `also` result for delta_field (z[unknown] order)."""
        t0 = time.perf_counter()
        known_z = np.where(unknown, np.nan, z)
        out = np.full(int(unknown.sum()), np.nan)
        delta = (np.zeros(out.size, bool) if aux is None or from_aux is None
                 else np.asarray(from_aux, bool))
        if not delta.all() and np.isfinite(known_z).any():   # the first fill's cells
            rest = np.zeros(unknown.shape, bool)
            rest[unknown] = ~delta
            out[~delta] = self.k["fill"] * fill_sigma(known_z, rest)
        if delta.any():
            cells = np.zeros(unknown.shape, bool)
            cells[unknown] = delta
            out[delta] = self.k["delta"] * delta_sigma(
                known_z - aux, cells, None if delta_variance is None else
                np.asarray(delta_variance)[delta])
        self.seconds += time.perf_counter() - t0
        return out.astype(np.float32)
