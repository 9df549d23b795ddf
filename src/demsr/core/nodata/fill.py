"""Filling nodata for streaming work: once for the whole raster, before tiling.

A model or kernel must never read a nodata value as elevation. Voids are
filled once, for the whole raster, before tiling (GDAL's inverse-distance
FillNodata, what `gdal:fillnodata` does), so every tile sees the same
filled surface and tiled results equal untiled ones. The original mask is
put back on the output afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from ..monitor import Monitor
from ..raster.io import GDAL_ENV, DemSource, read_band
from ..raster.write import DEFAULT_NODATA, RasterWriter, scratch_path, verify_written
from ..raster.space import check_space, raster_bytes
from ..raster.tiles import row_blocks
from .find import count_voids

FILL_SEARCH_PIXELS = 256  # beyond this distance from data a cell is never used by a kernel


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
    check_space([(work_path, raster_bytes(src.grid.width, src.grid.height))],
                "a temporary filled copy of the input, beside the output")
    with scratch_path(work_path) as tmp:
        profile = _write_copy(src, tmp, monitor.sub(0.3, 0.6))
        monitor.check()
        from ..raster.gdal_mode import osgeo_gdal
        gdal = osgeo_gdal()

        ds = gdal.Open(tmp, gdal.GA_Update)
        band = ds.GetRasterBand(1)
        sub = monitor.sub(0.6, 1.0)

        def _cb(fraction, _msg, _data):
            sub.progress(fraction)
            return 0 if monitor.cancelled() else 1

        gdal.FillNodata(band, None, FILL_SEARCH_PIXELS, 0, callback=_cb)
        band.FlushCache()
        band = None
        ds = None  # closes and writes: verified below, a full disk must not pass unseen
        verify_written(tmp, profile, f"{tmp} (a temporary filled copy of the input)")
        monitor.check()
        yield DemSource(path=tmp, band=1, grid=src.grid, nodata=DEFAULT_NODATA,
                        dtype="float32", band_count=1)


def _write_copy(src: DemSource, path: str, monitor: Monitor) -> dict:
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
    return profile


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
