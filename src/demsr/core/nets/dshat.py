"""DS-HAT (ISPRS Open J. Photogramm. Remote Sens. 2025): dual-stream void repair / SR.

Same-size network on the target grid (every input is first brought onto it):

- main stream: the first-filled, resampled DEM (normalised), the void mask and
  each void pixel's distance to data →
  3×3 head → Residual-in-Residual Dense Blocks (ESRGAN's RRDB, residual scale
  0.2) → trunk conv, with a long skip;
- support stream: the auxiliary channels (terrain derivatives, optionally
  Sentinel-2 bands) → 3×3 conv → conv blocks with Squeeze-and-Excitation;
- fusion: α = sigmoid(conv3×3([F_main, F_support])), one weight per pixel,
  F = α·F_main + (1 − α)·F_support;
- head: conv → LeakyReLU → conv predicts a residual over the input DEM in units
  of σ. (Scaling it up with the distance to data, where first-fill errors are
  larger, amplified unpredictable corrections and hurt large voids.)

Tile safety: the elevation is centred on its local mean (fixed window) and
divided by a per-raster relief constant σ (fitted once on the whole raster,
never on a tile), and the SE squeeze is a local box mean (fixed window) instead
of a global mean over the tile, so an output pixel depends only on inputs
within `halo` pixels and tiled runs equal untiled ones. The paper's depth and
width are unpublished; the defaults here are small enough for CPUs.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .local_norm import box_mean
from .registry import register

INTERPOLATION = "gdal-lanczos"


class _DenseBlock(nn.Module):
    """Residual dense block: `convs` densely connected 3×3 convs, the last back to nf."""

    def __init__(self, nf: int, gc: int, convs: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(nf + i * gc, gc if i < convs - 1 else nf, 3, padding=1)
            for i in range(convs))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < len(self.convs) - 1:
                feats.append(self.act(y))
        return x + 0.2 * y


class _RRDB(nn.Module):
    def __init__(self, nf: int, gc: int, convs: int, dense_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[_DenseBlock(nf, gc, convs) for _ in range(dense_blocks)])

    def forward(self, x):
        return x + 0.2 * self.blocks(x)


class _SEBlock(nn.Module):
    """conv–act–conv with squeeze-and-excitation (local squeeze window) and a skip."""

    def __init__(self, nf: int, reduction: int, radius: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(nf, nf, 3, padding=1))
        hidden = max(2, nf // reduction)
        self.excite = nn.Sequential(nn.Conv2d(nf, hidden, 1), nn.ReLU(True),
                                    nn.Conv2d(hidden, nf, 1), nn.Sigmoid())
        self.radius = radius

    def forward(self, x):
        y = self.body(x)
        return x + y * self.excite(box_mean(y, self.radius))


@register("dshat")
class DSHAT(nn.Module):
    defaults = {"features": 24, "growth": 12, "blocks": 2, "dense_blocks": 3, "convs": 3,
                "support_features": 16, "se_blocks": 2, "se_reduction": 4, "se_radius": 7,
                "elev_radius": 4, "dilations": [],
                "aux_channels": ["slope", "plan_curvature", "profile_curvature",
                                 "tangential_curvature", "flow_accumulation", "streams"]}

    # Sane ranges, checked on every checkpoint before the network is built (registry.check).
    scales = (1, 16)
    limits = {"features": (1, 512), "growth": (1, 512), "blocks": (1, 32),
              "dense_blocks": (1, 16), "convs": (1, 16), "support_features": (1, 512),
              "se_blocks": (0, 32), "se_reduction": (1, 512), "se_radius": (0, 64),
              "elev_radius": (0, 64)}
    list_limits = {"dilations": (16, 1, 64)}
    norm_limits = {"relief_window": (1, 1001)}

    @staticmethod
    def check_extra(hparams: dict) -> None:
        aux = hparams.get("aux_channels")
        if (not isinstance(aux, (list, tuple)) or not 1 <= len(aux) <= 32
                or not all(isinstance(a, str) and 0 < len(a) <= 64 for a in aux)):
            from ..errors import DemSrError

            raise DemSrError(f"aux_channels = {aux!r} is not a list of 1–32 channel names")

    # Recorded in checkpoints; the constants themselves are fitted per raster at run time.
    default_normalisation = {"kind": "dshat", "elevation": "(z - local mean) / raster relief",
                             "relief_window": 7, "aux": "per-raster fixed constants"}

    def __init__(self, scale: int, hparams: dict, normalisation: dict):
        super().__init__()
        self.interpolation = INTERPOLATION
        self.scale = int(scale)  # 1: a same-size network; the grid change happens before it
        self.hparams = {**self.defaults, **hparams}
        self.hparams["aux_channels"] = list(self.hparams["aux_channels"])
        self.hparams["dilations"] = [int(d) for d in self.hparams["dilations"]]
        self.norm = {**self.default_normalisation, **(normalisation or {})}
        h = self.hparams
        nf, sf = int(h["features"]), int(h["support_features"])
        n_aux = len(h["aux_channels"])
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.trunk = nn.Sequential(*[
            _RRDB(nf, int(h["growth"]), int(h["convs"]), int(h["dense_blocks"]))
            for _ in range(int(h["blocks"]))])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        # optional dilated convs after the RRDBs: a wider view for large voids, still local
        self.context = nn.ModuleList(nn.Conv2d(nf, nf, 3, padding=int(d), dilation=int(d))
                                     for d in self.hparams["dilations"])
        self.support_head = nn.Conv2d(n_aux, sf, 3, padding=1)
        self.support = nn.Sequential(*[_SEBlock(sf, int(h["se_reduction"]), int(h["se_radius"]))
                                       for _ in range(int(h["se_blocks"]))])
        self.support_out = nn.Conv2d(sf, nf, 1)
        self.alpha = nn.Conv2d(2 * nf, 1, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(nf, 1, 3, padding=1))
        nn.init.zeros_(self.tail[-1].weight)  # starts as the identity on the first fill
        nn.init.zeros_(self.tail[-1].bias)

    @property
    def aux_channels(self) -> list[str]:
        return list(self.hparams["aux_channels"])

    @property
    def halo(self) -> int:
        """Target-grid pixels of context an output pixel depends on."""
        h = self.hparams
        main = (int(h["elev_radius"]) + 1 + int(h["blocks"]) * int(h["dense_blocks"])
                * int(h["convs"]) + 1 + sum(int(d) for d in h["dilations"]))
        support = 1 + int(h["se_blocks"]) * (2 + int(h["se_radius"]))
        return max(main, support) + 1 + 2 + 1

    def forward(self, dem: torch.Tensor, voids: torch.Tensor, aux: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
        """dem (B,1,H,W) first-filled elevations; voids (B,1,H,W) distance of each void
        pixel to the nearest data pixel (0 = data); aux (B,n_aux,H,W) in [0, 1]; sigma
        (B,1,1,1) the raster's relief constant → repaired DEM (B,1,H,W), same units."""
        z = (dem - box_mean(dem, int(self.hparams["elev_radius"]))) / sigma
        mask = (voids > 0).to(dem.dtype)
        f0 = self.head(torch.cat([z, mask, torch.log1p(voids)], 1))
        f_main = f0 + self.trunk_conv(self.trunk(f0))
        for conv in self.context:
            f_main = f_main + 0.5 * F.leaky_relu(conv(f_main), 0.2)
        f_sup = self.support_out(self.support(self.support_head(aux)))
        alpha = torch.sigmoid(self.alpha(torch.cat([f_main, f_sup], 1)))
        fused = alpha * f_main + (1 - alpha) * f_sup
        return dem + sigma * self.tail(fused)
