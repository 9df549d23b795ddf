"""NormaliserSet.fit for rasters seen block by block, with the same constants.

NormaliserSet.fit needs, per derivative, the minimum and maximum of the finite
values and, for arctan (spread-scaled), the 95th percentile of |x|. Minimum and maximum stream
exactly. The percentile streams exactly too, in two passes over the blocks
(radix selection on the float32 bit patterns, which order non-negative floats
like their values): pass 1 counts |x| per 16-bit prefix, pass 2 keeps only the
values whose prefix holds the two order statistics numpy interpolates between.
Memory: 2 × 32768 counters per derivative plus the values of one prefix bin.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from .scaling import (DEFAULT_KIND, FIXED, SCALINGS, SPREAD_PERCENTILE, Normaliser,
                      NormaliserSet, no_values, scale_from_spread)

_BINS = 1 << 15   # 16-bit prefixes of non-negative float32 (sign bit 0)


def _abs_bits(values: np.ndarray) -> np.ndarray:
    return np.abs(values.astype(np.float32, copy=False)).view(np.uint32)


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's quantile interpolation, to the last bit."""
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


class StreamedFit:
    """Pass 1: add() every block; if second_pass(), pass 2: add2() every block again;
    then result() equals NormaliserSet.fit on the whole rasters."""

    def __init__(self, names, kinds: Optional[Mapping[str, str]] = None):
        kinds = {**DEFAULT_KIND, **(kinds or {})}
        self.kinds = {n: kinds.get(n, "minmax") for n in names}
        self.n = dict.fromkeys(names, 0)
        self.lo = dict.fromkeys(names, np.inf)
        self.hi = dict.fromkeys(names, -np.inf)
        self.hist = {n: np.zeros(_BINS, np.int64) for n in names if self._spread_scaled(n)}
        self.pick: dict[str, tuple] = {}
        self.kept: dict[str, list] = {n: [] for n in self.hist}

    def _fixed(self, name: str) -> bool:
        return name in FIXED and self.kinds[name] == FIXED[name]["kind"]

    def _spread_scaled(self, name: str) -> bool:
        return SCALINGS.get(self.kinds[name]).spread_scaled

    def add(self, name: str, block: np.ndarray) -> None:
        if self._fixed(name):
            return
        x = block[np.isfinite(block)]
        if not x.size:
            return
        self.n[name] += x.size
        self.lo[name] = min(self.lo[name], float(x.min()))
        self.hi[name] = max(self.hi[name], float(x.max()))
        if name in self.hist:
            self.hist[name] += np.bincount(_abs_bits(x) >> 16, minlength=_BINS)

    def second_pass(self) -> bool:
        """Whether add2 is needed (some spread-scaled derivative has values); prepares it."""
        for name, hist in self.hist.items():
            n = self.n[name]
            if not n:
                continue
            virtual = (SPREAD_PERCENTILE / 100.0) * (n - 1)
            k0 = int(np.floor(virtual))
            k1 = min(k0 + 1, n - 1)
            cum = np.cumsum(hist)
            bins = np.searchsorted(cum, [k0 + 1, k1 + 1])  # the prefix holding each rank
            below = int(cum[bins[0] - 1]) if bins[0] > 0 else 0
            self.pick[name] = (int(bins[0]), int(bins[1]), k0 - below, k1 - below,
                               virtual - k0)
        return bool(self.pick)

    def add2(self, name: str, block: np.ndarray) -> None:
        if name not in self.pick:
            return
        b0, b1 = self.pick[name][:2]
        bits = _abs_bits(block[np.isfinite(block)])
        top = bits >> 16
        self.kept[name].append(bits[(top >= b0) & (top <= b1)])

    def _spread(self, name: str) -> float:
        _, _, r0, r1, t = self.pick[name]
        vals = np.sort(np.concatenate(self.kept[name])).view(np.float32).astype(np.float64)
        return _lerp(float(vals[r0]), float(vals[r1]), t)

    def result(self) -> NormaliserSet:
        out = {}
        for name, kind in self.kinds.items():
            if self._fixed(name):
                out[name] = Normaliser(**FIXED[name])
                continue
            if not self.n[name]:
                raise no_values(name)
            scale = scale_from_spread(self._spread(name)) if self._spread_scaled(name) else 1.0
            probe = Normaliser(kind, 0.0, 1.0, scale).squash
            lo = float(probe(np.array([self.lo[name]]))[0])
            hi = float(probe(np.array([self.hi[name]]))[0])
            if hi <= lo:
                hi = lo + 1.0
            out[name] = Normaliser(kind, lo, hi, scale)
        return NormaliserSet(out)
