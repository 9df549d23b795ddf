"""The models shipped in resources/models: where they are and which factors they cover."""
from __future__ import annotations

import os

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models")
SR_PREFIX = "demsr_fast_x"
DSHAT_MODEL = os.path.join(MODELS_DIR, "demsr_dshat.pt")
# Factor-range models: (file, network scale, lowest, highest factor), each trained through
# the area-average finish for its range (the checkpoint records the same range; a test
# checks it). The engine tries them after a model of exactly the requested scale.
FACTOR_MODELS: list[tuple[str, int, float, float]] = []


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


def factor_models() -> list[tuple[str, int, float, float]]:
    """(path, scale, lo, hi) of the bundled factor-range models found on disk."""
    return [(os.path.join(MODELS_DIR, name), s, lo, hi) for name, s, lo, hi in FACTOR_MODELS
            if os.path.isfile(os.path.join(MODELS_DIR, name))]
