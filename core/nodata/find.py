"""What a void is, in one place.

A void is a cell without data (NaN once read: core.raster.io turns the band's
nodata into NaN). Two kinds matter: nodata connected to the raster border is
outside the DEM's footprint and stays nodata; nodata enclosed by data is a
hole to fill. Super-resolve fills every nodata cell for its kernels and puts
the mask back (so it only counts them); Void repair fills only the enclosed
ones (classify_voids).
"""
from __future__ import annotations

import os

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from ..errors import DemSrError
from ..monitor import Monitor
from ..raster.io import GDAL_ENV, DemSource, read_band
from ..raster.tiles import row_blocks

# Pixel classes: data, void to fill, outside the footprint, void left as nodata.
VALID, FILLED, NODATA, LEFT = 0, 1, 2, 3


def require_valid(valid_cells: int, path: str, band: int) -> None:
    """The error for a band with nothing in it."""
    if valid_cells == 0:
        raise DemSrError(
            f"'{os.path.basename(path)}' band {band} has no valid cells: every cell is "
            "nodata. Check the band and the layer's nodata value.")


def count_voids(src: DemSource, monitor: Monitor) -> int:
    """Cells without data, streamed; raises if there are no valid cells at all."""
    missing = 0
    g = src.grid
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        for row0, rows in row_blocks(g.height, g.width):
            monitor.check()
            block = read_band(ds, src.band, Window(0, row0, g.width, rows))
            missing += int(np.isnan(block).sum())
            monitor.progress((row0 + rows) / g.height)
    require_valid(g.width * g.height - missing, src.path, src.band)
    return missing


def classify_voids(dem: np.ndarray, max_void_size: float = 0.0) -> tuple[np.ndarray, int, int]:
    """(classes, voids to fill, voids left): NaN groups touching the border are NODATA,
    the others FILLED, or LEFT when wider than max_void_size pixels (2 × the largest
    distance of a void cell from valid data)."""
    nan = ~np.isfinite(dem)
    classes = np.where(nan, NODATA, VALID).astype(np.uint8)
    if not nan.any():
        return classes, 0, 0
    labels, n = ndimage.label(nan)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inside = nan & ~np.isin(labels, border)
    left = 0
    if max_void_size and max_void_size > 0 and inside.any():
        dist = ndimage.distance_transform_edt(inside)
        widest = ndimage.maximum(dist, labels, index=np.arange(1, n + 1))
        too_big = np.flatnonzero(2 * np.asarray(widest) > max_void_size) + 1
        too_big = too_big[~np.isin(too_big, border)]
        left = int(too_big.size)
        big = np.isin(labels, too_big)
        classes[big] = LEFT
        inside &= ~big
    classes[inside] = FILLED
    fill_count = int(len(np.setdiff1d(np.unique(labels[inside]), [0])))
    return classes, fill_count, left
