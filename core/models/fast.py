"""FastSR: the default CPU model.

Works on the LR grid and upsamples only at the end (pixel shuffle), so the
costly convolutions see 1/scale² of the output pixels. It predicts a
residual over torch bicubic interpolation in locally normalised units; a
linear 5×5 branch lets it express a classical deconvolution exactly, the
small CNN adds the non-linear part.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .normalise import local_stats, normalisation_config, stats_radius
from .registry import register

INTERPOLATION = "torch-bicubic"


@register("fast")
class FastSR(nn.Module):
    defaults = {"channels": 32, "blocks": 5}

    def __init__(self, scale: int, hparams: dict, normalisation: dict):
        super().__init__()
        self.scale = int(scale)
        self.hparams = {**self.defaults, **hparams}
        self.norm = normalisation_config(normalisation)
        c, n, s2 = int(self.hparams["channels"]), int(self.hparams["blocks"]), self.scale ** 2
        self.head = nn.Conv2d(1, c, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(n))
        self.tail = nn.Conv2d(c, s2, 3, padding=1)
        self.linear = nn.Conv2d(1, s2, 5, padding=2)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.shuffle = nn.PixelShuffle(self.scale)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @property
    def halo(self) -> int:
        """LR pixels of context each output pixel needs (conv + statistics + interpolation)."""
        convs = 2 + int(self.hparams["blocks"])
        return convs + stats_radius(self.norm) + 1 + 2 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,1,H,W) elevations → (B,1,sH,sW) elevations, same units."""
        mean, spread = local_stats(x, int(self.norm["radius"]), float(self.norm["eps"]))
        z = (x - mean) / (spread * float(self.norm["gain"]))
        f = self.act(self.head(z))
        h = f
        for conv in self.body:
            h = self.act(conv(h))
        r = self.shuffle(self.tail(h + f) + self.linear(z))
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        spread_up = F.interpolate(spread * float(self.norm["gain"]), scale_factor=self.scale,
                                  mode="bilinear", align_corners=False)
        return base + spread_up * r
