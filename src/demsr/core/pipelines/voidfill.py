"""Classical void repair on the input's own grid, streamed: METHOD=fill and METHOD=delta.

No network, no flow routing, no PyTorch. Three steps:
1. The nodata mask, read block by block (1 byte per pixel), and the void classes
   (core.nodata.find: nodata touching the border is outside the footprint).
2. Each void group (core.nodata.inpaint.void_groups) is read from the file in
   its window and filled: the biharmonic first fill (`fill`), or the delta
   surface fill from the auxiliary DEM (`delta`, core.nodata.auxiliary), whose
   uncovered cells take the first fill. Only the filled values are kept
   (12 bytes per filled cell).
3. The input is copied block by block with the filled values put in, to OUTPUT
   and FILLED_MASK together (atomic_outputs).

Memory: the masks of step 1 (about 6 bytes per input pixel while the groups are
found, 2 after), the filled cells, and one void group's window: no copy of the
DEM is held. A window's values do not depend on how the raster is read, so the
result equals the whole-raster computation (core.nodata.inpaint.inpaint).
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio
from rasterio.windows import Window

from ..monitor import Monitor
from ..nodata.auxiliary import AuxReader, RimStats, delta_fill
from ..nodata.find import (FILLED, LEFT, MASK_AUXILIARY, MASK_FILLED, MASK_KEPT, MASK_NODATA,
                           NODATA, classify_mask, nodata_mask)
from ..nodata.inpaint import fill_window, void_groups
from ..raster.io import GDAL_ENV, DemSource, RasterWriter, RowBands, read_band
from ..raster.tiles import row_blocks


@dataclass
class ClassicalRepair:
    voids: int            # void groups filled
    left_voids: int       # void groups left as nodata (max_void_size)
    filled: int           # cells filled
    left: int             # cells left as nodata
    from_auxiliary: int   # cells filled from the auxiliary DEM
    uncovered: int        # void cells the auxiliary does not cover (first fill there)
    outside: int = 0      # nodata cells connected to the border: outside the footprint
    rim_warning: Optional[str] = None


def repair_classical(src: DemSource, aux: Optional[DemSource], max_void_size: float,
                     writers: tuple[RasterWriter, RasterWriter], monitor: Monitor,
                     block_pixels: int = 1 << 20) -> ClassicalRepair:
    """Fill src's voids (first fill, or delta fill when `aux` is given) and write OUTPUT
    and FILLED_MASK through `writers` (see the module docstring)."""
    g = src.grid
    nan, _ = nodata_mask(src, monitor.sub(0.0, 0.1))
    classes, n_fill, n_left = classify_mask(nan, max_void_size)
    del nan
    monitor.check()
    fill = classes == FILLED
    idx, vals, from_aux, rims = _fill_groups(src, aux, fill, monitor.sub(0.1, 0.8),
                                             4 * block_pixels)
    del fill
    order = np.argsort(idx, kind="stable")
    idx, vals, from_aux = idx[order], vals[order], from_aux[order]
    out_w, mask_w = writers
    sub = monitor.sub(0.8, 1.0)
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        for row0, rows in row_blocks(g.height, g.width, block_pixels):
            monitor.check()
            block = read_band(ds, src.band, Window(0, row0, g.width, rows))
            cls = classes[row0:row0 + rows]
            mask = np.where(cls >= NODATA, MASK_NODATA, MASK_KEPT).astype(np.uint8)
            a, b = np.searchsorted(idx, [row0 * g.width, (row0 + rows) * g.width])
            local = idx[a:b] - row0 * g.width
            block.flat[local] = vals[a:b]
            mask.flat[local] = np.where(from_aux[a:b], MASK_AUXILIARY, MASK_FILLED)
            block[cls >= NODATA] = np.nan
            out_w.write(block, row0, 0)
            mask_w.write_raw(mask, row0, 0)
            sub.progress((row0 + rows) / g.height)
    filled = int(idx.size)
    n_aux = int(from_aux.sum())
    name = aux.path if aux else ""
    return ClassicalRepair(n_fill, n_left, filled, int((classes == LEFT).sum()), n_aux,
                           filled - n_aux if aux else 0,
                           outside=int((classes == NODATA).sum()),
                           rim_warning=rims.warning(os.path.basename(name)) if aux else None)


def _fill_groups(src: DemSource, aux: Optional[DemSource], fill: np.ndarray,
                 monitor: Monitor, band_pixels: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, RimStats]:
    """(flat cell indices, values, from the auxiliary?) of every void cell, group by group;
    the rim statistics of the auxiliary."""
    g = src.grid
    idx, vals, flags = [], [], []
    rims = RimStats()
    total = max(int(fill.sum()), 1)
    done = 0
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds, \
            (AuxReader(aux, g, superresolve=True, windows=(w for w, _ in void_groups(fill)),
                       dem=src, monitor=monitor) if aux else nullcontext()) as reader:
        bands = RowBands(ds, src.band, band_pixels)   # the groups come in row order
        for win, unknown in void_groups(fill):
            monitor.check()
            r, c = win
            z = bands.window(r, c).astype(np.float64)
            z[unknown] = np.nan
            if reader:
                a = reader.window(win)
                rims.add(z, a, unknown)
                v, f = delta_fill(z, a, unknown)
            else:
                v, f = fill_window(z, unknown), np.zeros(int(unknown.sum()), bool)
            rr, cc = np.nonzero(unknown)
            keep = np.isfinite(v)       # a group with no data around it stays nodata
            idx.append(((rr + r.start) * g.width + (cc + c.start))[keep])
            vals.append(v[keep].astype(np.float32))
            flags.append(f[keep])
            done += rr.size
            monitor.progress(done / total)
    cat = lambda parts, dtype: (np.concatenate(parts) if parts  # noqa: E731
                                else np.zeros(0, dtype))
    return cat(idx, np.int64), cat(vals, np.float32), cat(flags, bool), rims
