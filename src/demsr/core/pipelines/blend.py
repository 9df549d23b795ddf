"""Two bundled routes to one grid, averaged: the bundled rule's rows marked `blend`.

Where the bundled rule (core/nets/bundled.RULE) says blend, the rule's model (a ×3 or ×4
network finished by cubic spline) and a chain of two bundled models — the rule onto a grid
CHAIN_SCALE times coarser than the target, then the ×CHAIN_SCALE model onto the target —
make different errors; their mean beats either on the held-out DEMs
(docs/quality.md#which-model-serves-which-factor). Both routes run in every tile from the
same input window, so tiles stay seamless.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from affine import Affine

from ..monitor import Monitor
from ..nets import bundled
from ..raster.grid import Grid, grid_ratio
from ..raster.tiles import Tile
from .model_upsampler import ModelUpsampler, bundled_route
from .upsamplers import TileInput, Upsampler


def coarsened(grid: Grid, k: int) -> Grid:
    """The grid with k×k cells merged (same origin; partial cells at the far edges kept)."""
    return Grid(grid.transform * Affine.scale(k), math.ceil(grid.width / k),
                math.ceil(grid.height / k), grid.crs)


class ChainUpsampler(Upsampler):
    """`first` onto `mid`, then `second` (an exact ×k model) from `mid` onto the target.

    Per tile, `first` computes the mid cells the second network reads (clipped to the mid
    grid, edge cells repeated beyond it, as the engine pads a raster), so a chained run
    equals two engine runs with the mid grid written in between.
    """

    def __init__(self, first: Upsampler, second: ModelUpsampler, src: Grid, mid: Grid):
        self.first, self.second, self.mid = first, second, mid
        self.k = second.scale
        self.name = f"{first.name}, then {second.name}"
        self.device = second.device
        self.batch_size = max(first.batch_size, second.batch_size)
        # the first step's halo, plus the input pixels the second network's halo spans
        # (+1 mid cell for rounding down, +1 input pixel for the tile's own rounding)
        per_mid = max(mid.res[0] / src.res[0], mid.res[1] / src.res[1])
        self.halo = first.halo + math.ceil((second.halo + 1) * per_mid) + 1
        self.lanes = min(first.lanes, second.lanes)

    def use_lanes(self, lanes: int) -> None:
        self.first.use_lanes(lanes)
        self.second.use_lanes(lanes)

    def _mid_tile(self, t: Tile) -> tuple[Tile, tuple[int, int, int, int]]:
        """The mid-grid tile the second network needs for t (inside the mid grid), and the
        (top, bottom, left, right) edge repeats that complete it."""
        halo = self.second.halo
        r0, c0 = t.row0 // self.k - halo, t.col0 // self.k - halo
        r1 = (t.row0 + t.height - 1) // self.k + halo + 1
        c1 = (t.col0 + t.width - 1) // self.k + halo + 1
        cr0, cc0 = max(r0, 0), max(c0, 0)
        cr1, cc1 = min(r1, self.mid.height), min(c1, self.mid.width)
        tile = Tile(cr0, cc0, cr1 - cr0, cc1 - cc0, 0, 0, 0, 0)
        return tile, (cr0 - r0, r1 - cr1, cc0 - c0, c1 - cc1)

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        if not inputs:
            return []
        plans = [self._mid_tile(t) for t in tiles]
        mids = self.first.upsample(inputs, [m for m, _ in plans])
        chained = []
        for (m, (top, bottom, left, right)), data in zip(plans, mids):
            data = np.pad(data, ((top, bottom), (left, right)), mode="edge")
            chained.append(TileInput(data, m.row0 - top, m.col0 - left))
        return self.second.upsample(chained, tiles)


class MeanUpsampler(Upsampler):
    """The cell-by-cell mean of several upsamplers onto the same grid; each gets the same
    input windows (the widest halo any of them needs)."""

    def __init__(self, members: list[Upsampler]):
        self.members = members
        self.halo = max(m.halo for m in members)
        self.batch_size = max(m.batch_size for m in members)
        self.device = getattr(members[0], "device", "cpu")
        self.name = "mean of " + " and of ".join(f"({m.name})" for m in members)
        self.lanes = min(m.lanes for m in members)

    def use_lanes(self, lanes: int) -> None:
        for m in self.members:
            m.use_lanes(lanes)

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        outs = [m.upsample(inputs, tiles) for m in self.members]
        return [np.mean(np.stack(parts), axis=0, dtype=np.float32) for parts in zip(*outs)]


def model_upsampler(model_path: Optional[str], src: Grid, dst: Grid, device: str,
                    batch_size: int, monitor: Monitor) -> Upsampler:
    """METHOD=model: MODEL when given, else the bundled rule, blended where that is better."""
    row = None if model_path else bundled_route(src, dst)
    if row is None or not row.blend:
        return ModelUpsampler.for_grids(model_path, src, dst, device, batch_size, monitor)
    mid = coarsened(dst, bundled.CHAIN_SCALE)
    members = [ModelUpsampler.for_grids(None, src, dst, device, batch_size, monitor),
               ChainUpsampler(ModelUpsampler.for_grids(None, src, mid, device, batch_size,
                                                       monitor),
                              ModelUpsampler.for_grids(None, mid, dst, device, batch_size,
                                                       monitor), src, mid)]
    monitor.info(f"At ×{grid_ratio(src, dst):.4g} the bundled models' output is the mean of "
                 f"two routes: {members[0].name}; and {members[1].name}.")
    return MeanUpsampler(members)
