"""Tile plans: output tiles and the input windows (with halo) they need; row strips
for streaming passes; windows with edge cells repeated beyond an array.

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


def row_blocks(height: int, width: int, pixels: int = 1 << 20) -> Iterator[tuple[int, int]]:
    """(row0, rows) strips of about `pixels` cells, for streaming passes."""
    step = max(1, pixels // max(width, 1))
    for row0 in range(0, height, step):
        yield row0, min(step, height - row0)


def window(arr: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """arr[..., r0:r0+h, c0:c0+w] with edge cells repeated beyond the array."""
    H, W = arr.shape[-2:]
    a0, b0, a1, b1 = max(r0, 0), max(c0, 0), min(r0 + h, H), min(c0 + w, W)
    inner = arr[..., a0:a1, b0:b1]
    pads = [(0, 0)] * (arr.ndim - 2) + [(a0 - r0, r0 + h - a1), (b0 - c0, c0 + w - b1)]
    return np.pad(inner, pads, mode="edge") if any(p != (0, 0) for p in pads) else inner


def grid_tiles(shape: tuple[int, int], size: int) -> list[tuple[int, int, int, int]]:
    """(row0, col0, height, width) tiles of an array on one grid, row-major."""
    H, W = shape
    return [(r, c, min(size, H - r), min(size, W - c))
            for r in range(0, H, size) for c in range(0, W, size)]


def sparse_windows(hit: np.ndarray, tile_size: int, halo: int,
                   min_tile: int = 64) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(side, boxes): the True cells of `hit` cut by a grid of side×side tiles (side =
    tile_size, /2, /4, … ≥ min_tile), each tile's part being the bounding box of its True
    cells, (row0, col0, height, width). The side is the one whose boxes, each grown by the
    halo, cover the fewest pixels: sparse hits (small voids) get small windows, and a
    network runs on each box's cells plus its halo only. Boxes come smallest first, so
    a batch (padded to its largest box) holds boxes of similar size."""
    best = None
    size = tile_size
    h, w = hit.shape
    while True:
        nr, nc = -(-h // size), -(-w // size)
        padded = np.zeros((nr * size, nc * size), bool)
        padded[:h, :w] = hit
        blocks = padded.reshape(nr, size, nc, size)
        rows, cols = blocks.any(axis=3), blocks.any(axis=1)     # (nr, size, nc), (nr, nc, size)
        has = cols.any(axis=2)
        r0 = rows.argmax(axis=1)
        r1 = size - rows[:, ::-1, :].argmax(axis=1)
        c0 = cols.argmax(axis=2)
        c1 = size - cols[:, :, ::-1].argmax(axis=2)
        cost = int((((r1 - r0 + 2 * halo) * (c1 - c0 + 2 * halo))[has]).sum())
        if best is None or cost < best[0]:
            best = (cost, size, has, r0, r1, c0, c1)
        if size // 2 < min_tile:
            break
        size //= 2
    _, size, has, r0, r1, c0, c1 = best
    boxes = [(int(i * size + r0[i, j]), int(j * size + c0[i, j]),
              int(r1[i, j] - r0[i, j]), int(c1[i, j] - c0[i, j]))
             for i, j in zip(*np.nonzero(has))]
    return size, sorted(boxes, key=lambda b: (b[2], b[3], b[0], b[1]))
