"""Fixed-constant normalisers that turn terrain derivatives into model inputs.

Constants are fitted once, on a whole raster or a training set, and stored
(`to_dict`/`from_dict`, plain JSON-able values for a model checkpoint). They
are never refitted on a tile, so every tile of a raster, and every raster a
model sees, is scaled the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional

import numpy as np

from ..errors import DemSrError

KINDS = ("minmax", "arctan", "log")
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
        if self.kind not in KINDS:
            raise DemSrError(f"Unknown normalisation '{self.kind}'; use one of {', '.join(KINDS)}.")
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise DemSrError(
                f"Normalisation constants lo={self.lo}, hi={self.hi} are unusable (need "
                "finite lo < hi): the raster they were fitted on is constant or empty."
            )

    def _f(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "arctan":
            return np.arctan(self.scale * x)
        if self.kind == "log":
            return np.log1p(np.maximum(x, 0.0))
        return x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = (self._f(x) - self.lo) / (self.hi - self.lo)
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {k: (float(v) if k != "kind" else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Normaliser":
        return cls(kind=str(data["kind"]), lo=float(data["lo"]), hi=float(data["hi"]),
                   scale=float(data.get("scale", 1.0)))


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
    if kind == "arctan":
        spread = float(np.percentile(np.abs(x), 95.0))
        scale = 1.0 / spread if spread > 0 else 1.0
    f = Normaliser(kind, 0.0, 1.0, scale)._f(x)
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

    def to_dict(self) -> dict:
        return {name: n.to_dict() for name, n in self.normalisers.items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "NormaliserSet":
        return cls({name: Normaliser.from_dict(d) for name, d in data.items()})
