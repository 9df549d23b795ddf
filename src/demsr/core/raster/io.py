"""Reading DEM bands: one band of a DEM as float32 with NaN for nodata, whole, by
window (edges repeated or NaN beyond the raster) or in row bands for streamed windows.
Writing outputs: write.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from ..errors import DemSrError
from .grid import Grid, require_north_up

# GDAL's block cache while streaming; keeps peak memory flat for any raster size.
GDAL_ENV = {"GDAL_CACHEMAX": 128}


@dataclass(frozen=True)
class DemSource:
    path: str
    band: int
    grid: Grid
    nodata: Optional[float]
    dtype: str
    band_count: int


def open_dem(path: str, band: int = 1) -> DemSource:
    """Validate a DEM band and describe it; raises DemSrError with advice."""
    if not path:
        raise DemSrError("No input raster given.")
    try:
        with rasterio.open(path) as ds:
            count = ds.count
            if count < 1:
                raise DemSrError(f"'{path}' has no raster bands.")
            if not 1 <= band <= count:
                raise DemSrError(
                    f"Band {band} does not exist: '{os.path.basename(path)}' has {count} "
                    f"band(s). Choose a band between 1 and {count}."
                )
            require_north_up(ds.transform, f"'{os.path.basename(path)}'")
            nodata = ds.nodatavals[band - 1]
            return DemSource(path=path, band=band,
                             grid=Grid(ds.transform, ds.width, ds.height, ds.crs),
                             nodata=None if nodata is None else float(nodata),
                             dtype=ds.dtypes[band - 1], band_count=count)
    except RasterioIOError as exc:
        raise DemSrError(
            f"Cannot read '{path}' as a raster ({exc}). Check that the file exists and is a "
            "raster format GDAL can open (GeoTIFF, VRT, IMG, …)."
        ) from None


def read_band(ds, band: int, window: Optional[Window] = None) -> np.ndarray:
    """A band window as float32 with NaN where the data is missing.

    Uses GDAL's mask (nodata value, mask band or alpha) and also treats
    non-finite values as missing.
    """
    data = ds.read(band, window=window, out_dtype="float32")
    mask = ds.read_masks(band, window=window)
    data[mask == 0] = np.nan
    data[~np.isfinite(data)] = np.nan
    return data


class RowBands:
    """Windows of one band served from full-width row bands of about `pixels` cells: many
    small windows in row order (the void groups of a repair) cost one read per band instead
    of one read (and one mask read) each; the values are those read_band gives."""

    def __init__(self, ds, band: int, pixels: int = 1 << 22):
        self.ds, self.band = ds, band
        self.rows = max(1, pixels // max(ds.width, 1))
        self.r0 = self.r1 = 0
        self.data = np.empty((0, ds.width), np.float32)

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        if not (self.r0 <= rows.start and rows.stop <= self.r1):
            self.r0 = rows.start
            self.r1 = min(self.ds.height, self.r0 + max(self.rows, rows.stop - rows.start))
            self.data = read_band(self.ds, self.band,
                                  Window(0, self.r0, self.ds.width, self.r1 - self.r0))
        return self.data[rows.start - self.r0:rows.stop - self.r0, cols].copy()


def read_window(ds, band: int, row0: int, col0: int, height: int, width: int,
                pad_edge: bool = False) -> np.ndarray:
    """Read rows [row0, row0+height) × cols [col0, col0+width), which may lie partly
    outside the raster: outside cells are NaN, or the nearest edge value if pad_edge."""
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + height, ds.height), min(col0 + width, ds.width)
    if r1 <= r0 or c1 <= c0:
        return np.full((height, width), np.nan, np.float32)
    inner = read_band(ds, band, Window(c0, r0, c1 - c0, r1 - r0))
    if (r0, c0, r1, c1) == (row0, col0, row0 + height, col0 + width):
        return inner
    pads = ((r0 - row0, row0 + height - r1), (c0 - col0, col0 + width - c1))
    if pad_edge:
        return np.pad(inner, pads, mode="edge")
    return np.pad(inner, pads, mode="constant", constant_values=np.nan)


