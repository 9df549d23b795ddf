"""Tile plans: output tiles and the input windows (with halo) they need.

Each output pixel is computed from an input window that contains every
pixel it depends on, so cropping tile cores gives exactly the untiled result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .grid import Grid, source_index


@dataclass(frozen=True)
class Tile:
    row0: int      # output window
    col0: int
    height: int
    width: int
    src_row0: int  # input window with halo; may reach outside the raster
    src_col0: int
    src_height: int
    src_width: int


def plan_tiles(src: Grid, dst: Grid, tile_size: int, halo: int) -> list[Tile]:
    """Row-major tiles of tile_size output pixels (aligned to 256-px GeoTIFF blocks
    when tile_size is a multiple of 256, so each block is written once)."""
    tiles = []
    for row0 in range(0, dst.height, tile_size):
        h = min(tile_size, dst.height - row0)
        r_lo, _ = source_index(src, dst, np.array([row0]), np.array([0]))
        r_hi, _ = source_index(src, dst, np.array([row0 + h - 1]), np.array([0]))
        for col0 in range(0, dst.width, tile_size):
            w = min(tile_size, dst.width - col0)
            _, c_lo = source_index(src, dst, np.array([0]), np.array([col0]))
            _, c_hi = source_index(src, dst, np.array([0]), np.array([col0 + w - 1]))
            sr0, sc0 = int(r_lo[0]) - halo, int(c_lo[0]) - halo
            tiles.append(Tile(row0, col0, h, w, sr0, sc0,
                              int(r_hi[0]) + halo + 1 - sr0, int(c_hi[0]) + halo + 1 - sc0))
    return tiles


def batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), max(1, size)):
        yield tiles[i:i + size]
