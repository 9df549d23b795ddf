"""The models shipped in resources/models: where they are and which factors they cover."""
from __future__ import annotations

import os

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models")
SR_PREFIX = "demsr_fast_x"
DSHAT_MODEL = os.path.join(MODELS_DIR, "demsr_dshat.pt")


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
