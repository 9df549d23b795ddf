"""Classical operators inside a network: Lanczos upsampling, block mean and
back-projection, as fixed (untrained) torch layers.

Block-mean back-projection makes an upsampled DEM consistent with the
coarse cells it came from (the mean of each s×s block equals its LR cell).
On our held-out DEMs two back-projection steps over GDAL-equivalent Lanczos
lower elevation RMSE by 5–10 % against plain Lanczos on every DEM, lidar
included, so the networks start from there and learn only what is left.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LANCZOS_A = 3


def _lanczos(t: float) -> float:
    if t == 0.0:
        return 1.0
    if abs(t) >= LANCZOS_A:
        return 0.0
    pt = math.pi * t
    return LANCZOS_A * math.sin(pt) * math.sin(pt / LANCZOS_A) / (pt * pt)


def lanczos_weights(scale: int) -> torch.Tensor:
    """(s², 1, 7, 7) kernels: output sub-pixel (jy, jx) of an LR cell from its 7×7 neighbours.

    Sub-pixel j lies (j + 0.5)/s − 0.5 LR cells from the LR centre; the taps are
    normalised to sum 1 as GDAL does.
    """
    # Plain Python arithmetic, one tensor at the end: tensor operations here would, when a
    # checkpoint is checked on the meta device, pull in torch._dynamo (a second of start-up).
    taps = []
    for j in range(scale):
        d = (j + 0.5) / scale - 0.5
        w = [_lanczos(d - m) for m in range(-LANCZOS_A, LANCZOS_A + 1)]
        taps.append([v / sum(w) for v in w])
    k = [[[a * b for b in wx] for a in wy] for wy in taps for wx in taps]
    return torch.tensor(k, dtype=torch.float64)[:, None].float()


def lanczos_up(x: torch.Tensor, scale: int, weights: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) → (B,1,sH,sW); edges repeated (the engine pads tiles the same way)."""
    y = F.conv2d(F.pad(x, (LANCZOS_A,) * 4, mode="replicate"), weights.to(x.dtype))
    return F.pixel_shuffle(y, scale)


def block_mean(y: torch.Tensor, scale: int) -> torch.Tensor:
    return F.avg_pool2d(y, scale)


def back_project(y: torch.Tensor, lr: torch.Tensor, scale: int, weights: torch.Tensor,
                 steps: int) -> torch.Tensor:
    """Iterative back-projection: y += up(lr − blockmean(y)), `steps` times."""
    for _ in range(steps):
        y = y + lanczos_up(lr - block_mean(y, scale), scale, weights)
    return y


def halo(steps: int) -> int:
    """LR pixels of context a back-projected Lanczos upsampling needs."""
    return LANCZOS_A * (steps + 1) + steps
