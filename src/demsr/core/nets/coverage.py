"""Which factors a super-resolution checkpoint serves, and how its ×s output is finished
onto a ×f grid (f ≠ s). Plain Python: the engine, the training and the bundled-model rule
read it; no torch.

A checkpoint trained by 'Train DEM SR' records it in its provenance: "factors": [lo, hi]
(the factors it was trained for, both included) and "finish": "average" or "cubicspline"
(trained through that step, which the engine then uses at every one of them) or "auto"
(the rule below).
Checkpoints from before that record nothing and keep the rule they were made under: a
×s model serves s alone and, from s = 4 up, every factor in (1, 2s], its output going onto
the target grid by area average up to s/2 and by GDAL cubic spline above (measured on the
held-out DEMs, scripts/evaluate_factors.py --routes: the bundled ×4 model beats the best
classical resampler on every DEM at ×1.5625, ×2.5, ×3, ×5, ×6 and ×8 that way; the ×2
model does not at ×1.5625 nor at ×5–×8).
Which bundled model serves which factor is the one table core/nets/bundled.RULE; each of its
rows stays inside its model's coverage here, with the same finish (a test checks it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..errors import DemSrError

MIN_ANY_FACTOR_SCALE = 4
# Up to a factor of s/2 the ×s output is area-averaged onto the target grid; above it GDAL
# cubic spline takes it there (an average of 1–2 fine cells blurs a network trained for ×s
# alone, and GDAL's Lanczos rings when shrinking by less than 2).
AVERAGE_BELOW = 0.5
AUTO = "auto"
FINISH_METHODS = ("average", "cubicspline")  # what training and the engine can apply
FINISHES = (AUTO, *FINISH_METHODS)
FINISH_WORDS = {"average": "area average", "cubicspline": "cubic spline"}  # for messages
MAX_RECORDED = 16.0


def default_range(scale: int) -> tuple[float, float]:
    """The rule for checkpoints that record no factors: (1, 2s] from s = 4 up, else s."""
    if scale >= MIN_ANY_FACTOR_SCALE:
        return 1.0, 2.0 * scale
    return float(scale), float(scale)


@dataclass(frozen=True)
class Coverage:
    scale: int                    # the network's own integer factor
    lo: float                     # lowest factor served (above 1 always)
    hi: float                     # highest factor served
    finish: str = AUTO            # 'average', 'cubicspline' or AUTO (the rule above)
    recorded: bool = False        # read from the checkpoint (else the rule for old files)

    def covers(self, factor: float) -> bool:
        if self.lo == self.hi:
            return abs(factor - self.hi) <= 1e-6 * self.hi
        return (factor > 1 + 1e-9 and self.lo * (1 - 1e-6) <= factor
                and factor <= self.hi * (1 + 1e-6))

    def finish_for(self, factor: float) -> str:
        """How the ×s output goes onto a ×factor grid: 'average' or 'cubicspline'."""
        if self.finish != AUTO:
            return self.finish
        return "average" if factor <= self.scale * AVERAGE_BELOW * (1 + 1e-9) else "cubicspline"

    def text(self) -> str:
        if self.lo == self.hi:
            return f"×{self.lo:g} (model ×{self.scale})"
        low = "above ×1" if self.lo <= 1 else f"from ×{self.lo:g}"
        if self.recorded and self.finish != AUTO:
            low = "×1" if self.lo <= 1 else f"×{self.lo:g}"
            return (f"{low} to ×{self.hi:g} (model ×{self.scale}, trained for that range"
                    + (", ×1 itself excluded)" if self.lo <= 1 else ")"))
        return f"any factor {low} up to ×{self.hi:g} (model ×{self.scale})"


def rule(scale: int) -> Coverage:
    """The coverage of a checkpoint that records none (made before factors were recorded)."""
    lo, hi = default_range(int(scale))
    return Coverage(int(scale), lo, hi)


def _number(v) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def of_checkpoint(scale: int, provenance: dict, name: str = "the model") -> Coverage:
    """What a checkpoint serves: its recorded factors and finish, else the old rule. A record
    that makes no sense (trust nothing in a file) is a DemSrError naming the file."""
    factors, finish = provenance.get("factors"), provenance.get("finish", AUTO)
    if factors is None:
        return rule(scale)
    lo = hi = None
    if isinstance(factors, (list, tuple)) and len(factors) == 2:
        lo, hi = _number(factors[0]), _number(factors[1])
    if lo is None or hi is None or not 1 <= lo <= hi <= MAX_RECORDED:
        raise DemSrError(f"Model '{name}' records factors {factors!r}, not a range within "
                         f"[1, {MAX_RECORDED:g}]; it is damaged or not from 'Train DEM SR'.")
    if finish not in FINISHES:
        raise DemSrError(f"Model '{name}' records an unknown finishing step {finish!r} "
                         f"(known: {', '.join(FINISHES)}).")
    if finish == "average" and hi > scale * (1 + 1e-6):
        raise DemSrError(f"Model '{name}' (×{scale}) records factors up to ×{hi:g}, above its "
                         "own scale, with an area-average finish; it is damaged.")
    return Coverage(int(scale), lo, hi, finish, recorded=True)


def coverage_text(coverages: list[Coverage]) -> str:
    return ", ".join(c.text() for c in coverages) or "none (no bundled model installed)"
