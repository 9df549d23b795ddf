"""Nodata handling for streaming work: find voids, fill them once for the whole raster.

A model or kernel must never read a nodata value as elevation. Voids are
filled once, for the whole raster, before tiling (GDAL's inverse-distance
FillNodata, what `gdal:fillnodata` does), so every tile sees the same
filled surface and tiled results equal untiled ones. The original mask is
put back on the output afterwards.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from ..errors import DemSrError
from ..monitor import Monitor
from ..raster.io import (DEFAULT_NODATA, GDAL_ENV, DemSource, RasterWriter, partial_path,
                        read_band)

FILL_SEARCH_PIXELS = 256  # beyond this distance from data a cell is never used by a kernel


def row_blocks(height: int, width: int, pixels: int = 1 << 20) -> Iterator[tuple[int, int]]:
    """(row0, rows) strips of about `pixels` cells, for streaming passes."""
    step = max(1, pixels // max(width, 1))
    for row0 in range(0, height, step):
        yield row0, min(step, height - row0)


def count_voids(src: DemSource, monitor: Monitor) -> int:
    """Cells without data; raises if there are no valid cells at all."""
    missing = 0
    g = src.grid
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        for row0, rows in row_blocks(g.height, g.width):
            monitor.check()
            block = read_band(ds, src.band, Window(0, row0, g.width, rows))
            missing += int(np.isnan(block).sum())
            monitor.progress((row0 + rows) / g.height)
    if missing == g.width * g.height:
        raise DemSrError(
            f"'{os.path.basename(src.path)}' band {src.band} has no valid cells: every cell is "
            "nodata. Check the band and the layer's nodata value.")
    return missing


@contextmanager
def filled_source(src: DemSource, work_path: str, monitor: Monitor) -> Iterator[DemSource]:
    """The DEM with its voids filled, as a temporary GeoTIFF beside work_path.

    Yields `src` itself when there is nothing to fill. The temporary file is
    removed whatever happens.
    """
    voids = count_voids(src, monitor.sub(0.0, 0.3))
    if voids == 0:
        yield src
        return
    monitor.info(f"Filling {voids} nodata cells before resampling (inverse distance, "
                 f"up to {FILL_SEARCH_PIXELS} px); they stay nodata in the output.")
    tmp = partial_path(work_path)
    try:
        _write_copy(src, tmp, monitor.sub(0.3, 0.6))
        monitor.check()
        from osgeo import gdal

        ds = gdal.Open(tmp, gdal.GA_Update)
        band = ds.GetRasterBand(1)
        sub = monitor.sub(0.6, 1.0)

        def _cb(fraction, _msg, _data):
            sub.progress(fraction)
            return 0 if monitor.cancelled() else 1

        gdal.FillNodata(band, None, FILL_SEARCH_PIXELS, 0, callback=_cb)
        band = None
        ds = None
        monitor.check()
        yield DemSource(path=tmp, band=1, grid=src.grid, nodata=DEFAULT_NODATA,
                        dtype="float32", band_count=1)
    finally:
        for leftover in (tmp, tmp + ".aux.xml"):
            if os.path.exists(leftover):
                os.remove(leftover)


def _write_copy(src: DemSource, path: str, monitor: Monitor) -> None:
    g = src.grid
    profile = dict(driver="GTiff", width=g.width, height=g.height, count=1, dtype="float32",
                   crs=g.crs, transform=g.transform, nodata=DEFAULT_NODATA, tiled=True,
                   BIGTIFF="IF_SAFER")
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds, \
            rasterio.open(path, "w", **profile) as out:
        writer = RasterWriter(out, DEFAULT_NODATA)
        for row0, rows in row_blocks(g.height, g.width):
            monitor.check()
            writer.write(read_band(ds, src.band, Window(0, row0, g.width, rows)), row0, 0)
            monitor.progress((row0 + rows) / g.height)


def fill_nearest(window: np.ndarray) -> Optional[np.ndarray]:
    """Fill NaN cells of a window with the nearest valid value (None if none is valid).

    Only cells far from any data are still NaN after the global fill; their
    values never reach a valid output cell, so a window-local fill is enough.
    """
    invalid = np.isnan(window)
    if not invalid.any():
        return window
    if invalid.all():
        return None
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return window[tuple(idx)]
