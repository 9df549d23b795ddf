"""The models shipped in resources/models: where they are, which factor each serves (RULE)
and the hashes that vouch for them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models")
SR_PREFIX = "demsr_fast_x"
DSHAT_MODEL = os.path.join(MODELS_DIR, "demsr_dshat.pt")
AVERAGE, SPLINE = "average", "cubicspline"  # finishing steps (core/nets/coverage.py)


@dataclass(frozen=True)
class Route:
    """One row of the bundled-model rule: the factors it serves and how."""
    lo: float              # factors above lo ...
    hi: float              # ... up to hi; lo == hi: the output grid is the input's
    model: str             #     subdivided exactly hi×hi (the model's own scale)
    scale: int             # the network's integer scale
    finish: str = ""       # onto the target grid: "" (own scale), AVERAGE or SPLINE
    blend: bool = False    # averaged with the chain (the rule onto a grid CHAIN_SCALE
    #                        times coarser than the target, then the ×CHAIN_SCALE model)

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    @property
    def path(self) -> str:
        return os.path.join(MODELS_DIR, self.model)

    def serves(self, factor: float, exact: Optional[int]) -> bool:
        """Whether this row takes a ×factor output grid (exact: the integer s when the
        output grid is the input's subdivided s×s, else None)."""
        if self.exact:
            return exact == self.scale
        return self.lo * (1 + 1e-9) < factor <= self.hi * (1 + 1e-6)

    def factors_text(self) -> str:
        return f"exactly ×{self.hi:g}" if self.exact else f"above ×{self.lo:g} up to ×{self.hi:g}"


# Which bundled model serves which factor, finished how, blended or not: the one copy of
# the rule (the engine, Void repair's probe, the Status dialog, Super-resolve DEM's help and
# the README table read it; tests/test_readme.py checks the README against it). Rows with
# lo == hi (an output grid that is the input's subdivided s×s) come before the intervals;
# otherwise the first row whose interval holds the factor. Each model serves factors inside
# what its checkpoint records or its scale's rule allows, with the same finish (coverage.py;
# a test checks both). Why these models and bounds (measured on the held-out DEMs,
# scripts/evaluate_factors.py): docs/quality.md#which-model-serves-which-factor.
RULE: tuple[Route, ...] = (
    Route(1.0, 2.0, "demsr_fast_x4_f1-2.pt", 4, AVERAGE),
    Route(2.0, 2.0, "demsr_fast_x2.pt", 2),
    Route(2.0, 2.625, "demsr_fast_x3_f2-3.pt", 3, SPLINE, blend=True),
    Route(2.625, 3.0, "demsr_fast_x4_f2-4.pt", 4, SPLINE, blend=True),
    Route(3.0, 3.0, "demsr_fast_x3.pt", 3),
    Route(3.0, 3.5, "demsr_fast_x4_f2-4.pt", 4, SPLINE),
    Route(4.0, 4.0, "demsr_fast_x4.pt", 4),
    Route(3.5, 8.0, "demsr_fast_x4.pt", 4, SPLINE),
)
CHAIN_SCALE = 2


def route(factor: float, exact: Optional[int]) -> Optional[Route]:
    """The row of RULE for a ×factor output grid (exact: see Route.serves), else None."""
    rows = [r for r in RULE if r.exact] + [r for r in RULE if not r.exact]
    return next((r for r in rows if r.serves(factor, exact)), None)


def served_text() -> str:
    """The factors the bundled models serve, for messages: 'above ×1 up to ×8'."""
    return (f"above ×{min(r.lo for r in RULE):g} up to ×{max(r.hi for r in RULE):g}")


def rule_text() -> str:
    """The rule in words, one clause per row (Super-resolve DEM's help)."""
    words = {AVERAGE: "area average", SPLINE: "cubic spline"}
    parts = []
    for r in RULE:
        how = f" (×{r.scale} network, then {words[r.finish]})" if r.finish else ""
        mean = (f", averaged with the chain (this rule onto a grid {CHAIN_SCALE} times "
                f"coarser, then {SR_PREFIX}{CHAIN_SCALE}.pt)" if r.blend else "")
        parts.append(f"{r.factors_text()}: {r.model}{how}{mean}")
    return "; ".join(parts)


# SHA-256 of each bundled model file, byte for byte: what the plugin vouches for
# (checkpoint.is_bundled). A model retrained for the bundle changes its line here; a test
# checks that every file in resources/models is listed with its hash.
BUNDLED_SHA256 = {
    "demsr_dshat.pt": "d8b7535dfa42f380fefac0462b801bf3d8be5935b40653f9d4abadd700b0021a",
    "demsr_fast_x2.pt": "d819c1a844bf4d2e78bfa048b64596aa8e801392ed9408e33d6dbfe68a1c006f",
    "demsr_fast_x3.pt": "029660368e842e784364ba628c21b7d24579e927de6605fa3e4cd95173b11c30",
    "demsr_fast_x3_f2-3.pt": "b38257105eca6bff6d250e958fcf1ab9a7760be0edcbcd3c16bcefc2620bfa19",
    "demsr_fast_x4.pt": "63410a641182c2c59ea2d54c65c8a831dc565e4c9c09d5d9a6e70caf1a0ffefa",
    "demsr_fast_x4_f1-2.pt": "190c46de625ddf89b872ae1ae23e05d0d0e9cf843ac7d84e87a28e917371c1e6",
    "demsr_fast_x4_f2-4.pt": "3fea86d334e870575b766958b910bbb632cfc98a3e93c35cc571042fc795d25a",
}


def sr_model_path(scale: int) -> str:
    return os.path.join(MODELS_DIR, f"{SR_PREFIX}{scale}.pt")


def sr_scales() -> list[int]:
    """The integer scales of the bundled models that run at their own scale (×2, ×3, ×4)."""
    return sorted(r.scale for r in RULE if r.exact)
