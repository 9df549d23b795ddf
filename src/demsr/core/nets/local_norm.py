"""Local statistics and the tile-safe local normalisation of elevations.

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
# Sane ranges of its numeric settings, checked on every checkpoint (registry.check).
NORM_LIMITS = {"radius": (0, 64), "eps": (1e-9, 1e3), "gain": (1e-6, 1e6)}


def normalisation_config(normalisation: dict | None) -> dict:
    cfg = {**DEFAULT_NORMALISATION, **(normalisation or {})}
    if cfg["kind"] != "local_mad":
        from ..errors import DemSrError

        raise DemSrError(f"Unknown normalisation '{cfg['kind']}' in the model.")
    return cfg


def box_mean(x, radius: int):
    """Mean over a (2r+1)² window of a (B,C,H,W) tensor or numpy array, edges replicated;
    separable so a large radius stays cheap. The one local-statistics kernel of the
    networks, the losses and the per-raster relief constant (numpy there: void repair also
    runs without torch)."""
    if radius <= 0:
        return x
    import numpy as np

    if isinstance(x, np.ndarray):
        from scipy.ndimage import uniform_filter1d

        k = 2 * radius + 1
        y = uniform_filter1d(x, k, axis=-2, mode="nearest")
        return uniform_filter1d(y, k, axis=-1, mode="nearest")
    import torch.nn.functional as F

    k = 2 * radius + 1
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.avg_pool2d(x, (k, 1), stride=1)
    return F.avg_pool2d(x, (1, k), stride=1)


def local_stats(x, radius: int, eps: float):
    """(local mean, local mean absolute deviation + eps) of a (B,1,H,W) tensor."""
    mean = box_mean(x, radius)
    return mean, box_mean(abs(x - mean), radius) + eps


def relief_constant(dem, valid, radius: int = 3) -> float:
    """Mean local absolute deviation over the valid cells of a whole raster (NaN-free
    float array): one elevation unit per raster, never per tile."""
    import numpy as np

    z = np.ascontiguousarray(dem, dtype=np.float64)[None, None]
    dev = local_stats(z, radius, 0.0)[1][0, 0]
    vals = dev[valid & np.isfinite(dev)]
    return max(float(vals.mean()) if vals.size else 1.0, 1e-3)


def stats_radius(cfg: dict) -> int:
    """Pixels each side a normalised value depends on."""
    return 2 * int(cfg["radius"])
