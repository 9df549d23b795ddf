"""Is a network's output plausible terrain? Checked on every output tile before it is
written, by every engine that runs a model (Super-resolve, Void repair).

A model file whose weights are damaged or crafted can pass every check of its numbers
(checkpoint.py) and still answer ±10¹⁴ m or NaN. A network that refines terrain never
leaves the elevation range of the input window it saw by more than that window's own
relief, so anything beyond that range widened by RELIEF_MARGIN × relief (at least
MIN_MARGIN units, for flat windows) is refused, as is any NaN or infinity.
"""
from __future__ import annotations

import numpy as np

from ..errors import DemSrError

RELIEF_MARGIN = 1.0   # × the window's relief (max − min of its valid cells), each side
MIN_MARGIN = 1.0      # elevation units, for flat windows (a lake, a coastal plain)


def output_bounds(window: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) plausible output for an input window (NaN = no data); None when the
    window holds no valid cell (then only finiteness is checked)."""
    valid = window[np.isfinite(window)]
    if not valid.size:
        return None
    lo, hi = float(valid.min()), float(valid.max())
    margin = max(RELIEF_MARGIN * (hi - lo), MIN_MARGIN)
    return lo - margin, hi + margin


def check_output_tile(output: np.ndarray, window: np.ndarray, model: str,
                      where: str = "") -> None:
    """Raise DemSrError naming `model` when `output` (a network's answer for the input
    elevations `window`) holds NaN, infinity or values beyond output_bounds(window).
    `where` says which window, e.g. "input rows 0–1055, columns 0–1055"."""
    at = f" for {where}" if where else ""
    if not output.size:
        return
    lo, hi = float(output.min()), float(output.max())  # NaN if any is NaN
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(output.size - np.count_nonzero(np.isfinite(output)))
        raise DemSrError(
            f"Model {model} gave {bad:,} NaN or infinite values{at}: its weights are damaged "
            "or it does not work on this DEM. Nothing was written. Use another model (leave "
            "MODEL empty for the bundled one).")
    bounds = output_bounds(window)
    if bounds is None:
        return
    if lo < bounds[0] or hi > bounds[1]:
        valid = window[np.isfinite(window)]
        raise DemSrError(
            f"Model {model} gave elevations from {lo:.6g} to {hi:.6g}{at}, where its input "
            f"lies between {float(valid.min()):.6g} and {float(valid.max()):.6g}: no terrain "
            "does that, so its weights are damaged or it was not made for this DEM. Nothing "
            "was written. Use another model (leave MODEL empty for the bundled one).")
