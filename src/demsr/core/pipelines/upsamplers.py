"""Upsamplers turn a filled input window into one output tile.

The streaming engine reads each tile's input window (with `halo` extra
input pixels on every side) and hands it over; an upsampler never sees
nodata and never sees more than its window, which is what makes tiled
runs equal untiled ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..raster.grid import Grid
from ..raster.warp import KERNEL_RADIUS, check_method, resample
from ..raster.tiles import Tile


@dataclass
class TileInput:
    """A filled input window whose top-left cell is input pixel (row0, col0)."""

    data: np.ndarray
    row0: int
    col0: int


class Upsampler:
    """Interface: `halo` input pixels of context on each side, `batch_size` tiles per call,
    and `lanes`: how many upsample() calls the engine may make at once from its own threads
    (core/backends.Network.lanes; 1: one after another)."""

    halo: int = 0
    batch_size: int = 1
    name: str = ""
    lanes: int = 1

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        raise NotImplementedError

    def use_lanes(self, lanes: int) -> None:
        """upsample() will be called `lanes` at a time (1 ≤ lanes ≤ self.lanes)."""


class ClassicalUpsampler(Upsampler):
    """GDAL's resampling kernels (identical to gdalwarp -r METHOD)."""

    def __init__(self, method: str, src: Grid, dst: Grid):
        check_method(method)
        self.method = method
        self.src, self.dst = src, dst
        self.halo = KERNEL_RADIUS[method] + 1
        self.name = f"GDAL {method}"

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        return [resample(inp.data, self.src.window_transform(inp.row0, inp.col0),
                         (t.height, t.width), self.dst.window_transform(t.row0, t.col0),
                         self.method, self.src.crs)
                for inp, t in zip(inputs, tiles)]
