"""GISR (Remote Sensing 2023, 15(2), 305): same-size refiner on the HR grid.

As published: 9×9 head, 16 residual blocks of 64 channels with BatchNorm and
PReLU, a global skip, the pixel-shuffle / strided 9×9 tail and tanh, and the
global information constraint output = (G(z) + z) / 2, with the loss on that
mean. Unlike the public fork: torch bicubic replaces Kriging, BatchNorm eps
is the usual 1e-5, and normalisation is local (tile-safe), identical in
training and inference, and never sees nodata. `gain` scales the normalised
surface into tanh's range.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .local_norm import NORM_LIMITS, local_stats, normalisation_config, stats_radius
from .registry import register

INTERPOLATION = "torch-bicubic"


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.PReLU(),
                                  nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


@register("gisr")
class GISR(nn.Module):
    defaults = {"channels": 64, "blocks": 16}
    default_normalisation = {"gain": 4.0}
    # Sane ranges, checked on every checkpoint before the network is built (registry.check).
    scales = (2, 16)
    limits = {"channels": (1, 512), "blocks": (1, 64)}
    norm_limits = NORM_LIMITS

    interpolation = INTERPOLATION

    def __init__(self, scale: int, hparams: dict, normalisation: dict):
        super().__init__()
        self.scale = int(scale)
        self.hparams = {**self.defaults, **hparams}
        self.norm = normalisation_config({**self.default_normalisation, **normalisation})
        c, n = int(self.hparams["channels"]), int(self.hparams["blocks"])
        self.head = nn.Sequential(nn.Conv2d(1, c, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[_Block(c) for _ in range(n)])
        self.post = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.up = nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1), nn.BatchNorm2d(4 * c),
                                nn.PixelShuffle(2), nn.PReLU())
        self.tail = nn.Conv2d(c, 1, 9, stride=2, padding=4)

    @property
    def halo(self) -> int:
        hr = 4 + 2 * int(self.hparams["blocks"]) + 1 + 1 + 3 + stats_radius(self.norm)
        return math.ceil(hr / self.scale) + 2 + 1

    def generator(self, z: torch.Tensor) -> torch.Tensor:
        head = self.head(z)
        feat = head + self.post(self.blocks(head))
        return torch.tanh(self.tail(self.up(feat)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,1,H,W) LR elevations → (B,1,sH,sW): mean of G and the interpolated DEM."""
        hr = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        mean, spread = local_stats(hr, int(self.norm["radius"]), float(self.norm["eps"]))
        unit = spread * float(self.norm["gain"])
        z = (hr - mean) / unit
        return mean + unit * (self.generator(z) + z) / 2
