"""What a void is, in one place.

A void is a cell without data (NaN once read: core.raster.io turns the band's
nodata into NaN). Two kinds matter: nodata connected to the raster border is
outside the DEM's footprint and stays nodata; nodata enclosed by data is a
hole to fill. Super-resolve fills every nodata cell for its kernels and puts
the mask back (so it only counts them); Void repair fills only the enclosed
ones (classify_voids).

Voids that are not nodata: some DEMs fill their voids with a sentinel value
(-9999, -32767, 3.4e38, …) without declaring it as nodata. Read as elevations
they make every method ring by hundreds of metres around them, so a band
with a plateau at a typical fill value far from every other elevation gets a
warning naming the value to declare (SentinelScan).
"""
from __future__ import annotations

import math
import os

from typing import Optional

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
# Void repair's FILLED_MASK: where each output cell came from.
MASK_KEPT, MASK_FILLED, MASK_AUXILIARY, MASK_NODATA = 0, 1, 2, 255


def require_valid(valid_cells: int, path: str, band: int) -> None:
    """The error for a band with nothing in it."""
    if valid_cells == 0:
        raise DemSrError(
            f"'{os.path.basename(path)}' band {band} has no valid cells: every cell is "
            "nodata. Check the band and the layer's nodata value.")


FLOAT32_MAX = float(np.finfo(np.float32).max)
# Fill values seen in the wild (SRTM, ASTER, ArcGIS, int16/uint16 and float32 extremes).
SENTINELS = (-9999.0, -99999.0, -10000.0, -32767.0, -32768.0, 9999.0, 32767.0, 65535.0,
             -FLOAT32_MAX, FLOAT32_MAX)
SENTINEL_GAP = 500.0        # elevation units between the fill value and every real value
SENTINEL_MIN_SHARE = 1e-4   # of the valid cells (and at least SENTINEL_MIN_CELLS)
SENTINEL_MIN_CELLS = 4


class SentinelScan:
    """Counts cells at typical fill values and the range of all other values, block by
    block, then says whether one of them looks like undeclared voids."""

    def __init__(self):
        self.counts = dict.fromkeys(SENTINELS, 0)
        self.valid = 0
        self.lo, self.hi = math.inf, -math.inf

    def add(self, block: np.ndarray) -> None:
        """A float32 block, NaN = nodata; no copy of it unless it holds fill values (the
        streaming reader's memory must not grow)."""
        valid = int(np.count_nonzero(~np.isnan(block)))
        if not valid:
            return
        self.valid += valid
        found = []
        for v in SENTINELS:
            n = int(np.count_nonzero(block == np.float32(v)))
            if n:
                self.counts[v] += n
                found.append(v)
        if found:
            block = np.where(np.isin(block, np.float32(found)), np.float32(np.nan), block)
            if np.isnan(block).all():
                return
        self.lo = min(self.lo, float(np.nanmin(block)))
        self.hi = max(self.hi, float(np.nanmax(block)))

    def suspect(self) -> Optional[tuple[float, int]]:
        """(value, cells) of the most frequent fill value far from every other value."""
        need = max(SENTINEL_MIN_CELLS, SENTINEL_MIN_SHARE * self.valid)
        found = [(n, v) for v, n in self.counts.items() if n >= need and
                 (v < self.lo - SENTINEL_GAP or v > self.hi + SENTINEL_GAP)]
        if not found:
            return None
        n, v = max(found)
        return v, n

    def warning(self, path: str, band: int, nodata: Optional[float]) -> Optional[str]:
        hit = self.suspect()
        if hit is None:
            return None
        v, n = hit
        name = os.path.basename(path)
        side = "below" if v < self.lo else "above"
        declared = ("has no nodata value" if nodata is None
                    else f"has nodata value {nodata:g}, but")
        others = (f" ({self.lo:g} to {self.hi:g})" if math.isfinite(self.lo) else "")
        return (f"'{name}' band {band} {declared} {n} cells ({100 * n / self.valid:.2g} %) "
                f"equal {v:g}, far {side} every other value{others}: they look like voids "
                f"filled with {v:g}. Used as elevations they make the result ring by hundreds "
                f"of metres around them. Set {v:g} as the band's nodata value (Layer "
                f"Properties ▸ Transparency ▸ Additional no data value, or `gdal_edit.py "
                f"-a_nodata {v:g} {name}`) and run again.")


def warn_sentinels(dem: np.ndarray, src: DemSource, monitor: Monitor) -> None:
    """SentinelScan on a band already in memory (NaN = nodata)."""
    scan = SentinelScan()
    scan.add(dem)
    text = scan.warning(src.path, src.band, src.nodata)
    if text:
        monitor.warning(text)


def _scanned_blocks(src: DemSource, monitor: Monitor, scan: SentinelScan):
    """(row0, rows, block) strips of the band, each also added to `scan`."""
    g = src.grid
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        for row0, rows in row_blocks(g.height, g.width):
            monitor.check()
            block = read_band(ds, src.band, Window(0, row0, g.width, rows))
            scan.add(block)
            yield row0, rows, block
            monitor.progress((row0 + rows) / g.height)


def _after_scan(src: DemSource, valid: int, scan: SentinelScan, monitor: Monitor) -> None:
    """The error for a band with no valid cell, the warning about a fill value."""
    require_valid(valid, src.path, src.band)
    text = scan.warning(src.path, src.band, src.nodata)
    if text:
        monitor.warning(text)


def count_voids(src: DemSource, monitor: Monitor) -> int:
    """Cells without data, streamed; raises if there are no valid cells at all, warns
    about voids filled with an undeclared sentinel value."""
    scan = SentinelScan()
    missing = 0
    for _, _, block in _scanned_blocks(src, monitor, scan):
        missing += int(np.isnan(block).sum())
    _after_scan(src, src.grid.width * src.grid.height - missing, scan, monitor)
    return missing


def classify_voids(dem: np.ndarray, max_void_size: float = 0.0) -> tuple[np.ndarray, int, int]:
    """(classes, voids to fill, voids left) of a band in memory (NaN = nodata)."""
    return classify_mask(~np.isfinite(dem), max_void_size)


def nodata_mask(src: DemSource, monitor: Monitor) -> tuple[np.ndarray, int]:
    """(nodata cells as a boolean raster, valid cell count), read block by block (1 byte per
    pixel held); warns about voids filled with an undeclared sentinel value."""
    g = src.grid
    nan = np.empty((g.height, g.width), bool)
    scan = SentinelScan()
    for row0, rows, block in _scanned_blocks(src, monitor, scan):
        np.isnan(block, out=nan[row0:row0 + rows])
    valid = int(nan.size - np.count_nonzero(nan))
    _after_scan(src, valid, scan, monitor)
    return nan, valid


def classify_mask(nan: np.ndarray, max_void_size: float = 0.0) -> tuple[np.ndarray, int, int]:
    """(classes, voids to fill, voids left): NaN groups touching the border are NODATA,
    the others FILLED, or LEFT when wider than max_void_size pixels (2 × the largest
    distance of a void cell from valid data)."""
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
