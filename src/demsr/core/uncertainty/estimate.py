"""The expected error of METHOD=model's output, per output pixel, as one standard deviation
in metres: the UNCERTAINTY output of Super-resolve DEM.

σ² = Σ_k c_k(f)² · x_k², with four features in metres on the output grid:

- spread: |model − GDAL Lanczos|, where the network departs from the classical answer;
- rough: the RMS of the input's Laplacian over 3×3 input cells (curvature × cell²);
- extrap: rough × the ratio of the Laplacian's energy at one input cell and at two (over
  15×15 cells): how fast relief grows towards small scales here, carried one octave finer —
  the detail the input cannot hold;
- grad: the input's gradient (metres per input cell).

σ is homogeneous in elevation (a DEM in feet gets σ in feet, an offset changes nothing) and
local: every feature reads at most FEATURE_REACH input cells around a pixel, within the
engine's halo, so tiled runs equal untiled ones. The coefficients c_k were fitted per factor
(2, 3, 4) on the training-side DEMs, never on the validation DEMs (scripts/uncertainty.py
fit, resources/models/demsr_uncertainty.json): a Gaussian likelihood per DEM for the shape,
then one factor so that 68.3 % of the pooled cells lie within 1σ. Other factors interpolate
the coefficients in log(f) and hold the end values outside [2, 4]. Calibration and cost:
docs/quality.md (Uncertainty).
"""
from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np
from scipy import ndimage

from ..errors import DemSrError
from ..raster.grid import Grid, grid_ratio
from ..raster.tiles import Tile
from ..raster.warp import resample
from ..pipelines.upsamplers import ClassicalUpsampler, TileInput

FEATURES = ("spread", "rough", "extrap", "grad")
INPUT_FEATURES = FEATURES[1:]
RATIO_WINDOW = 15        # input cells over which the two octaves' energies are compared
MAX_RATIO = 4.0          # the extrapolation never multiplies rough by more
# input cells each feature reads around a pixel: the Laplacian of a 3×3 mean at spacing 2
# (1 + 2) plus half the ratio window; the Laplacian plus the 3×3 RMS (2); the gradient (1)
FEATURE_REACH = 3 + RATIO_WINDOW // 2
COEFFICIENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models", "demsr_uncertainty.json")


def _box(a: np.ndarray, n: int) -> np.ndarray:
    """Mean over n×n cells, each output a direct sum (no running sum: a pixel's value does
    not depend on where its window starts, so tiles agree to the last bit)."""
    w = np.full(n, 1.0 / n)
    return ndimage.correlate1d(ndimage.correlate1d(a, w, 0, mode="nearest"), w, 1,
                               mode="nearest")


def input_features(window: np.ndarray) -> dict[str, np.ndarray]:
    """rough, extrap and grad (metres) on a filled input window (float64 inside)."""
    z = np.asarray(window, np.float64)
    lap = ndimage.laplace(z, mode="nearest")
    rough = np.sqrt(_box(lap * lap, 3).clip(0.0))
    sm = np.pad(_box(z, 3), 2, mode="edge")
    lap2 = (sm[:-4, 2:-2] + sm[4:, 2:-2] + sm[2:-2, :-4] + sm[2:-2, 4:]
            - 4.0 * sm[2:-2, 2:-2])
    fine = _box(lap * lap, RATIO_WINDOW).clip(0.0)
    coarse = _box(lap2 * lap2, RATIO_WINDOW).clip(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(coarse > 0, np.sqrt(fine / np.where(coarse > 0, coarse, 1.0)),
                         np.where(fine > 0, MAX_RATIO, 0.0))
    gy, gx = np.gradient(z)
    return {"rough": rough, "extrap": rough * np.minimum(ratio, MAX_RATIO),
            "grad": np.hypot(gx, gy)}


def load_coefficients(path: Optional[str] = None) -> dict:
    """The fitted coefficients: {factor: {feature: c}} and what they were fitted on."""
    path = path or COEFFICIENTS
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        table = {float(k): {name: float(v[name]) for name in FEATURES}
                 for k, v in data["factors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DemSrError(f"The uncertainty calibration '{path}' cannot be read ({exc}); "
                         "reinstall the plugin, or run scripts/uncertainty.py fit.") from None
    return {"factors": table, "meta": {k: v for k, v in data.items() if k != "factors"}}


def coefficients_for(factor: float, table: dict[float, dict]) -> dict[str, float]:
    """The coefficients at a factor: linear in log(factor) between fitted factors, the end
    values outside them."""
    known = sorted(table)
    if factor <= known[0]:
        return dict(table[known[0]])
    if factor >= known[-1]:
        return dict(table[known[-1]])
    hi = next(k for k in known if k >= factor)
    lo = max(k for k in known if k < hi)
    t = (math.log(factor) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return {n: (1 - t) * table[lo][n] + t * table[hi][n] for n in FEATURES}


def sigma(features: dict[str, np.ndarray], coefficients: dict[str, float]) -> np.ndarray:
    """σ (float32) from the features on the output grid."""
    total = sum(coefficients[n] ** 2 * np.square(features[n], dtype=np.float64)
                for n in FEATURES)
    return np.sqrt(total).astype(np.float32)


class UncertaintyEstimator:
    """σ for each output tile of the engine, from the tile's input window (the engine reads
    it with `halo` cells around) and the model's output on the tile."""

    def __init__(self, src: Grid, dst: Grid, coefficients: Optional[dict] = None):
        self.src, self.dst = src, dst
        self.lanczos = ClassicalUpsampler("lanczos", src, dst)
        # +1 for bilinear onto the output grid, +1 for the tile's own rounding
        self.halo = max(self.lanczos.halo, FEATURE_REACH + 2)
        self.factor = grid_ratio(src, dst)
        table = coefficients or load_coefficients()["factors"]
        self.coefficients = coefficients_for(self.factor, table)

    def features(self, inp: TileInput, tile: Tile, output: np.ndarray
                 ) -> dict[str, np.ndarray]:
        """The four features of one tile on the output grid."""
        src_t = self.src.window_transform(inp.row0, inp.col0)
        dst_t = self.dst.window_transform(tile.row0, tile.col0)
        shape = (tile.height, tile.width)
        out = {n: resample(v.astype(np.float32), src_t, shape, dst_t, "bilinear", self.src.crs)
               for n, v in input_features(inp.data).items()}
        classical = self.lanczos.upsample([inp], [tile])[0]
        out["spread"] = np.abs(output.astype(np.float64) - classical)
        return out

    def estimate(self, inputs: list[TileInput], tiles: list[Tile],
                 outputs: list[np.ndarray]) -> list[np.ndarray]:
        return [sigma(self.features(i, t, o), self.coefficients)
                for i, t, o in zip(inputs, tiles, outputs)]
