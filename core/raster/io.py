"""Reading DEM bands and writing GeoTIFF outputs atomically.

In memory, nodata is always NaN (float32); files get a real nodata value.
"""
from __future__ import annotations

import math
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from ..errors import DemSrError
from .grid import Grid, require_north_up

DEFAULT_NODATA = -32768.0  # below any real elevation or depth (Challenger Deep ~ -10 935 m)
GTIFF_EXTENSIONS = (".tif", ".tiff")
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


def output_nodata(src_nodata: Optional[float]) -> float:
    """Keep the input's nodata value when float32 can hold it, else a safe one."""
    if src_nodata is not None and math.isfinite(src_nodata):
        if np.float32(src_nodata) == src_nodata:
            return float(src_nodata)
    return DEFAULT_NODATA


def check_output_path(path: str) -> None:
    """Fail before any heavy work if the output cannot be written."""
    if not path:
        raise DemSrError("No output file given.")
    if not path.lower().endswith(GTIFF_EXTENSIONS):
        raise DemSrError(
            f"Output '{path}' must be a GeoTIFF (.tif or .tiff); other formats are not written."
        )
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise DemSrError(f"The output folder '{folder}' does not exist. Create it or pick another.")
    if not os.access(folder, os.W_OK):
        raise DemSrError(f"The output folder '{folder}' is not writable. Pick another folder.")
    if os.path.isdir(path):
        raise DemSrError(f"The output path '{path}' is a folder. Give a file name ending in .tif.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise DemSrError(f"The output file '{path}' exists and cannot be overwritten.")


def gtiff_profile(grid: Grid, nodata: float, count: int = 1, dtype: str = "float32") -> dict:
    """Tiled, compressed (float predictor) GeoTIFF, BigTIFF when it may exceed 4 GB."""
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=count,
                   dtype=dtype, crs=grid.crs, transform=grid.transform, nodata=nodata,
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   predictor=3 if dtype.startswith("float") else 2, zlevel=6,
                   BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")
    if grid.width < 256 or grid.height < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    return profile


class RasterWriter:
    """Writes float windows with NaN turned into the nodata value."""

    def __init__(self, ds, nodata: float):
        self.ds = ds
        self.nodata = np.float32(nodata)

    def write(self, data: np.ndarray, row0: int, col0: int, band: int = 1) -> None:
        out = np.asarray(data, dtype=np.float32).copy()
        invalid = ~np.isfinite(out)
        # A valid value equal to the nodata value would silently become a hole.
        out[(out == self.nodata) & ~invalid] = np.nextafter(self.nodata, np.float32(0))
        out[invalid] = self.nodata
        h, w = out.shape
        self.ds.write(out, band, window=Window(col0, row0, w, h))


def partial_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.partial.tif")


@contextmanager
def scratch_path(path: str) -> Iterator[str]:
    """A hidden partial-file name beside `path`, removed (with its .aux.xml) on exit."""
    tmp = partial_path(path)
    try:
        yield tmp
    finally:
        for leftover in (tmp, tmp + ".aux.xml"):
            if os.path.exists(leftover):
                os.remove(leftover)


@contextmanager
def atomic_output(path: str, profile: dict) -> Iterator[RasterWriter]:
    """Write to a hidden partial file and move it into place only on success.

    A failed or cancelled run leaves neither the partial file nor a
    half-written output behind.
    """
    check_output_path(path)
    with scratch_path(path) as tmp:
        with rasterio.Env(**GDAL_ENV), rasterio.open(tmp, "w", **profile) as ds:
            yield RasterWriter(ds, profile["nodata"])
        os.replace(tmp, path)
        stale = path + ".aux.xml"  # old statistics would describe the previous file
        if os.path.exists(stale):
            os.remove(stale)


def write_array(path: str, array: np.ndarray, grid: Grid, nodata: float = DEFAULT_NODATA) -> None:
    """Write a whole in-memory single-band array (NaN = nodata) atomically."""
    with atomic_output(path, gtiff_profile(grid, nodata)) as writer:
        writer.write(array, 0, 0)
