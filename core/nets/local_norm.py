"""Tile-safe local normalisation of elevations.

Each pixel is centred on the mean of a fixed window around it and divided by
the mean absolute deviation in a window around it (plus eps metres). Only
fixed-size neighbourhoods are used, never a statistic of a whole patch or
tile, so a pixel's value does not depend on where a tile starts, and any
elevation range (seafloor to Himalaya, 1 m lidar to 90 m SRTM) maps to
similar numbers. No nodata ever reaches it: the engine fills voids first and
training patches never touch nodata.
"""
from __future__ import annotations

DEFAULT_NORMALISATION = {"kind": "local_mad", "radius": 3, "eps": 1e-3, "gain": 1.0}


def normalisation_config(normalisation: dict | None) -> dict:
    cfg = {**DEFAULT_NORMALISATION, **(normalisation or {})}
    if cfg["kind"] != "local_mad":
        from ..errors import DemSrError

        raise DemSrError(f"Unknown normalisation '{cfg['kind']}' in the model.")
    return cfg


def local_stats(x, radius: int, eps: float):
    """(local mean, local mean absolute deviation + eps) of a (B,1,H,W) tensor."""
    import torch.nn.functional as F

    k = 2 * radius + 1
    pad = (radius,) * 4
    mean = F.avg_pool2d(F.pad(x, pad, mode="replicate"), k, stride=1)
    dev = (x - mean).abs()
    spread = F.avg_pool2d(F.pad(dev, pad, mode="replicate"), k, stride=1) + eps
    return mean, spread


def stats_radius(cfg: dict) -> int:
    """Pixels each side a normalised value depends on."""
    return 2 * int(cfg["radius"])
