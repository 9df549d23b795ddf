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
# demsr_fast_x4_f1-2: the ×4 model fine-tuned for (1, 2) (`make train-default`); at ×1.5625
# on the held-out DEMs 0.82× the RMSE of the best GDAL resampler, against 0.90× for the ×4
# model by the rule (README, Quality).
FACTOR_MODELS: list[tuple[str, int, float, float, str]] = [
    ("demsr_fast_x4_f1-2.pt", 4, 1.0, 2.0, "average")]


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
