"""The models shipped in resources/models: where they are and which factors they cover."""
from __future__ import annotations

import os

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models")
SR_PREFIX = "demsr_fast_x"
DSHAT_MODEL = os.path.join(MODELS_DIR, "demsr_dshat.pt")
# Factor-range models: (file, network scale, lowest, highest factor, finish), each trained
# through that finishing step for its range (the checkpoint records the same; a test checks
# it). The engine tries them after a model of exactly the requested scale.
# The factors listed are those the engine serves with the model: inside what it records
# (trained for). demsr_fast_x4_f1-2: a narrow ×4 network (24 channels, 4 blocks) trained for
# (1, 2) through the area average; ×1.5625 on the held-out DEMs 0.79× the RMSE of the best
# GDAL resampler (the ×4 model by the rule: 0.90×; the ×4 model fine-tuned for (1, 2), the
# former bundled one: 0.81× at 2.5× the time). demsr_fast_x4_f2-4: fine-tuned for [2, 4]
# through GDAL cubic spline; ×2.5 0.90× (rule 0.93×), ×3 0.91× (0.91×), ×3.5 0.89× (0.90×),
# but ×3.75 0.913× against 0.912×, so it serves up to ×3.5 (README, Quality;
# scripts/train_default.py).
# demsr_fast_x3_f2-3: the ×3 model fine-tuned for [2, 3] through GDAL cubic spline; better
# than demsr_fast_x4_f2-4 up to ×2.625 (×2.25 0.874× against 0.891×, ×2.5 slope 0.900×
# against 0.907×, ×2.625 0.876× against 0.881×) but not at ×2.75 (0.895× against 0.873×),
# so it serves (2, 2.625] and demsr_fast_x4_f2-4 (2.625, 3.5] (×3 itself: demsr_fast_x3).
FACTOR_MODELS: list[tuple[str, int, float, float, str]] = [
    ("demsr_fast_x4_f1-2.pt", 4, 1.0, 2.0, "average"),
    ("demsr_fast_x3_f2-3.pt", 3, 2.0, 2.625, "cubicspline"),
    ("demsr_fast_x4_f2-4.pt", 4, 2.625, 3.5, "cubicspline")]
# Between these factors (exclusive, inclusive; an exact bundled scale excepted) the engine
# averages the rule's model with a chain: the rule onto a grid CHAIN_SCALE times coarser
# than the target (the (1, 2) model), then the ×CHAIN_SCALE model (core/pipelines/blend.py).
# Held-out DEMs (scripts/evaluate_factors.py), blend against the rule alone, elevation / slope
# geometric means: ×2.125 0.858 / 0.853 (0.884 / 0.879), ×2.5 0.870 / 0.866 (0.897 / 0.900),
# ×2.875 0.867 / 0.867 (0.878 / 0.885; the gentle DEM's slope 0.980 against 1.020); above ×3
# the rule alone is as good or better (×3.125 0.875 / 0.876 against 0.880 / 0.878).
BLEND_FACTORS = (2.0, 3.0)
CHAIN_SCALE = 2


# SHA-256 of each bundled model file, byte for byte: what the plugin vouches for
# (checkpoint.is_bundled). A model retrained for the bundle changes its line here; a test
# checks that every file in resources/models is listed with its hash.
BUNDLED_SHA256 = {
    "demsr_dshat.pt": "d8b7535dfa42f380fefac0462b801bf3d8be5935b40653f9d4abadd700b0021a",
    "demsr_fast_x2.pt": "9f331f980502b8fb4cd1698cb48acdaa41a3797155d48f3d94cb16d3dec384ac",
    "demsr_fast_x3.pt": "029660368e842e784364ba628c21b7d24579e927de6605fa3e4cd95173b11c30",
    "demsr_fast_x3_f2-3.pt": "b38257105eca6bff6d250e958fcf1ab9a7760be0edcbcd3c16bcefc2620bfa19",
    "demsr_fast_x4.pt": "63410a641182c2c59ea2d54c65c8a831dc565e4c9c09d5d9a6e70caf1a0ffefa",
    "demsr_fast_x4_f1-2.pt": "4406f4e6f9cde27fee84c81b9e9dbe3ec595201a7c7edbda625495aa9d1631e1",
    "demsr_fast_x4_f2-4.pt": "3fea86d334e870575b766958b910bbb632cfc98a3e93c35cc571042fc795d25a",
}


def sr_model_path(scale: int) -> str:
    return os.path.join(MODELS_DIR, f"{SR_PREFIX}{scale}.pt")


def sr_scales() -> list[int]:
    """Scales of the bundled super-resolution models found on disk."""
    if not os.path.isdir(MODELS_DIR):
        return []
    found = []
    for name in os.listdir(MODELS_DIR):
        if name.startswith(SR_PREFIX) and name.endswith(".pt"):
            try:
                found.append(int(name[len(SR_PREFIX):-3]))
            except ValueError:
                pass
    return sorted(found)


def factor_models() -> list[tuple[str, int, float, float, str]]:
    """(path, scale, lo, hi, finish) of the bundled factor-range models found on disk."""
    return [(os.path.join(MODELS_DIR, name), *rest) for name, *rest in FACTOR_MODELS
            if os.path.isfile(os.path.join(MODELS_DIR, name))]
