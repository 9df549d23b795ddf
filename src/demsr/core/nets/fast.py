"""FastSR: the default CPU model.

Works on the LR grid and upsamples only at the end (pixel shuffle), so the
costly convolutions see 1/scale² of the output pixels. It predicts a
residual over GDAL-equivalent Lanczos in locally normalised units (a linear
5×5 branch for the deconvolution part, a small CNN for the rest), then
back-projects the sum onto the LR cells (block mean of each s×s block = its
LR cell) `back_projection` times. With the residual at zero it is exactly
Lanczos + back-projection, which already beats Lanczos on every held-out
DEM; training only has to add to that. Models trained on LR made otherwise
than by block mean use back_projection = 0.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import classical_layers
from .local_norm import NORM_LIMITS, local_stats, normalisation_config, stats_radius
from .registry import register

INTERPOLATION = "lanczos+backprojection"


@register("fast")
class FastSR(nn.Module):
    defaults = {"channels": 32, "blocks": 5, "back_projection": 2}
    # Sane ranges, checked on every checkpoint before the network is built (registry.check).
    scales = (2, 16)
    limits = {"channels": (1, 512), "blocks": (0, 64), "back_projection": (0, 16)}
    norm_limits = NORM_LIMITS

    interpolation = INTERPOLATION

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
        self.register_buffer("lanczos", classical_layers.lanczos_weights(self.scale),
                             persistent=False)
        self.register_buffer("bilinear", classical_layers.bilinear_weights(self.scale),
                             persistent=False)

    @property
    def halo(self) -> int:
        """LR pixels of context each output pixel needs: the wider of the residual's reach
        (local statistics, then the deeper of the 3×3 convolutions and the 5×5 linear
        branch; the spread's 3×3 bilinear lies within it) and the Lanczos kernel, then one
        Lanczos kernel per back-projection step. No wider: a cell this far inside a window
        comes out bit for bit as in any wider window (checked on every bundled model)."""
        convs = 2 + int(self.hparams["blocks"])
        residual = stats_radius(self.norm) + max(convs, 2)
        return (max(residual, classical_layers.LANCZOS_A)
                + classical_layers.halo(int(self.hparams["back_projection"])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,1,H,W) elevations → (B,1,sH,sW) elevations, same units."""
        mean, spread = local_stats(x, int(self.norm["radius"]), float(self.norm["eps"]))
        z = (x - mean) / (spread * float(self.norm["gain"]))
        f = self.act(self.head(z))
        h = f
        for conv in self.body:
            h = self.act(conv(h))
        r = self.tail(h + f) + self.linear(z)              # (B, s², H, W): sub-pixels
        spread_up = classical_layers.subpixels(spread * float(self.norm["gain"]), self.bilinear)
        y = classical_layers.subpixels(x, self.lanczos, centred=True) + spread_up * r
        y = classical_layers.back_project(y, x, self.lanczos, int(self.hparams["back_projection"]))
        return self.shuffle(y)
