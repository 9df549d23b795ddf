"""Fixed-constant normalisers that turn terrain derivatives into model inputs.

Constants are fitted once, on a whole raster (streamed: streamfit.py) or a
training set. They are never refitted on a tile, so every tile of a raster is
scaled the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np

from ..errors import DemSrError
from ..by_name import Registry

SPREAD_PERCENTILE = 95.0  # of |x|: the spread a spread-scaled kind divides by


@dataclass(frozen=True)
class Scaling:
    """f(x, scale), the squashing applied before the linear map to [0, 1]; `spread_scaled`:
    scale = 1 / the SPREAD_PERCENTILE of |x| (typical values fill the linear part, outliers
    saturate), else 1."""

    f: Callable[[np.ndarray, float], np.ndarray]
    spread_scaled: bool = False


# name -> Scaling; the first is the default
SCALINGS: Registry = Registry("normalisation")
SCALINGS.register("minmax")(Scaling(lambda x, scale: x))
SCALINGS.register("arctan")(Scaling(lambda x, scale: np.arctan(scale * x), spread_scaled=True))
SCALINGS.register("log")(Scaling(lambda x, scale: np.log1p(np.maximum(x, 0.0))))


def scale_from_spread(spread: float) -> float:
    return 1.0 / spread if spread > 0 else 1.0


# What each derivative gets by default: curvatures are heavy-tailed (arctan
# squashes the tails), flow accumulation spans 1 … 10^7 cells (log).
DEFAULT_KIND = {
    "slope": "minmax",
    "aspect": "minmax",
    "plan_curvature": "arctan",
    "profile_curvature": "arctan",
    "tangential_curvature": "arctan",
    "flow_accumulation": "log",
    "streams": "minmax",
}
# Constants that need no fitting: the physical range is known.
FIXED = {
    "slope": dict(kind="minmax", lo=0.0, hi=90.0),
    "aspect": dict(kind="minmax", lo=0.0, hi=360.0),
    "streams": dict(kind="minmax", lo=0.0, hi=1.0),
}


@dataclass(frozen=True)
class Normaliser:
    """y = (f(x) − lo) / (hi − lo), clipped to [0, 1]; f = x, atan(scale·x) or ln(1 + x).

    NaN (nodata) stays NaN.
    """

    kind: str
    lo: float
    hi: float
    scale: float = 1.0

    def __post_init__(self):
        SCALINGS.get(self.kind)  # an unknown kind: DemSrError naming the known ones
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise DemSrError(
                f"Normalisation constants lo={self.lo}, hi={self.hi} are unusable (need "
                "finite lo < hi): the raster they were fitted on is constant or empty."
            )

    def squash(self, x: np.ndarray) -> np.ndarray:
        """f(x) in float64: the values lo and hi are taken from."""
        return SCALINGS.get(self.kind).f(np.asarray(x, dtype=np.float64), self.scale)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = (self.squash(x) - self.lo) / (self.hi - self.lo)
        return np.clip(y, 0.0, 1.0).astype(np.float32)


def no_values(name: str) -> DemSrError:
    """A derivative without a single value: the DEM is too thin for a 3×3 neighbourhood."""
    return DemSrError(
        f"The DEM gives no value of '{name}': slope, curvature and flow need valid neighbours "
        "in both directions, which a raster only 1 cell high or wide (or one whose valid "
        "cells are all isolated) does not have. Give a DEM of at least 2×2 valid cells "
        "(a repair needs far more around each void to be meaningful).")


def fit_normaliser(values: np.ndarray, kind: str, percentile: float = 0.0,
                   name: str = "") -> Normaliser:
    """Constants from a whole raster (or a training set): the finite values' range after f,
    optionally trimmed to [percentile, 100 − percentile]. For arctan, scale = 1 / the 95th
    percentile of |x|, so typical curvatures fill the linear part and outliers saturate."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        if not name:  # not a derivative (a spectral band …)
            raise DemSrError("Cannot fit a normalisation: the raster has no valid cells.")
        raise no_values(name)
    scale = 1.0
    if SCALINGS.get(kind).spread_scaled:
        scale = scale_from_spread(float(np.percentile(np.abs(x), SPREAD_PERCENTILE)))
    f = Normaliser(kind, 0.0, 1.0, scale).squash(x)
    lo, hi = (float(np.percentile(f, percentile)), float(np.percentile(f, 100.0 - percentile))) \
        if percentile > 0 else (float(f.min()), float(f.max()))
    if hi <= lo:  # constant raster: any fixed, valid range maps it to one value
        hi = lo + 1.0
    return Normaliser(kind, lo, hi, scale)


@dataclass
class NormaliserSet:
    """One normaliser per derivative name, stored together with a model."""

    normalisers: dict[str, Normaliser]

    @classmethod
    def fit(cls, derivatives: Mapping[str, np.ndarray],
            kinds: Optional[Mapping[str, str]] = None) -> "NormaliserSet":
        """Fit on whole rasters; slope, aspect and streams use their fixed physical range."""
        kinds = {**DEFAULT_KIND, **(kinds or {})}
        out = {}
        for name, values in derivatives.items():
            if name in FIXED and (kinds.get(name) == FIXED[name]["kind"]):
                out[name] = Normaliser(**FIXED[name])
            else:
                out[name] = fit_normaliser(values, kinds.get(name, "minmax"), name=name)
        return cls(out)

    def apply(self, derivatives: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(derivatives) - set(self.normalisers)
        if missing:
            raise DemSrError(f"No stored normalisation for {', '.join(sorted(missing))}.")
        return {name: self.normalisers[name](values) for name, values in derivatives.items()}
