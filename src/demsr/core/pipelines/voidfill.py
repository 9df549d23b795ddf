"""Classical void repair on the input's own grid, streamed: METHOD=fill and METHOD=delta.

No network, no flow routing, no PyTorch. Three steps:
1. The nodata mask, read block by block (1 byte per pixel), and the void classes
   (core.nodata.find: nodata touching the border is outside the footprint).
2. Each void group (core.nodata.inpaint.void_groups) is read from the file in
   its window and filled: the biharmonic first fill (`fill`), or the delta
   surface fill from the auxiliary DEM (`delta`, core.nodata.auxiliary), whose
   uncovered cells take the first fill. Only the filled values are kept
   (12 bytes per filled cell; 4 more for UNCERTAINTY: each filled cell's σ from
   the same window, core.uncertainty.voids).
3. The input is copied block by block with the filled values put in, to OUTPUT
   and FILLED_MASK (and UNCERTAINTY) together (atomic_outputs).

Memory: the masks of step 1 (about 6 bytes per input pixel while the groups are
found, 2 after), the filled cells, and one void group's window: no copy of the
DEM is held. A window's values do not depend on how the raster is read, so the
result equals the whole-raster computation (core.nodata.inpaint.inpaint).
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

from ..monitor import Monitor
from ..nodata.auxiliary import AuxReader, RimStats, delta_fill
from ..nodata.find import (FILLED, LEFT, MASK_AUXILIARY, MASK_FILLED, MASK_KEPT, MASK_NODATA,
                           NODATA, classify_mask, nodata_mask)
from ..nodata.inpaint import fill_window, group_windows, solvable, void_groups
from ..raster.io import GDAL_ENV, DemSource, RowBands, read_band
from ..raster.write import RasterWriter, atomic_outputs
from ..raster.tiles import row_blocks
from ..errors import DemSrError
from ..memory import available_bytes, gigabytes
from ..raster.space import require_room
from .voidrepair_request import (MAX_STREAM_PIXELS, VoidRepairRequest, VoidRepairResult,
                                 auxiliary_warnings, output_names, written)
from ..uncertainty.voids import VoidSigma


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
    uncertainty_seconds: float = 0.0   # of the run, spent on σ (UNCERTAINTY)


def repair_classical(src: DemSource, aux: Optional[DemSource], max_void_size: float,
                     writers: Sequence[RasterWriter], monitor: Monitor,
                     block_pixels: int = 1 << 20,
                     sigma: Optional[VoidSigma] = None) -> ClassicalRepair:
    """Fill src's voids (first fill, or delta fill when `aux` is given) and write OUTPUT
    and FILLED_MASK through `writers` (see the module docstring); with `sigma`, a third
    writer takes UNCERTAINTY (σ of each filled cell, nodata elsewhere)."""
    g = src.grid
    nan, _ = nodata_mask(src, monitor.sub(0.0, 0.1))
    classes, n_fill, n_left = classify_mask(nan, max_void_size)
    del nan
    monitor.check()
    fill = classes == FILLED
    idx, vals, from_aux, sig, rims = _fill_groups(src, aux, fill, monitor.sub(0.1, 0.8),
                                                  4 * block_pixels, sigma)
    del fill
    order = np.argsort(idx, kind="stable")
    idx, vals, from_aux = idx[order], vals[order], from_aux[order]
    sig = sig[order] if sigma is not None else None
    out_w, mask_w = writers[:2]
    sub = monitor.sub(0.8, 1.0)
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        for row0, rows in row_blocks(g.height, g.width, block_pixels):
            monitor.check()
            block = read_band(ds, src.band, Window(0, row0, g.width, rows))
            cls = classes[row0:row0 + rows]
            mask = np.where(cls >= NODATA, MASK_NODATA, MASK_KEPT).astype(np.uint8)
            cells, local = _block_cells(idx, row0, rows, g.width)
            block.flat[local] = vals[cells]
            mask.flat[local] = np.where(from_aux[cells], MASK_AUXILIARY, MASK_FILLED)
            block[cls >= NODATA] = np.nan
            out_w.write(block, row0, 0)
            mask_w.write_raw(mask, row0, 0)
            if sigma is not None:
                writers[2].write(_sigma_block(local, sig[cells], rows, g.width), row0, 0)
            sub.progress((row0 + rows) / g.height)
    filled = int(idx.size)
    n_aux = int(from_aux.sum())
    name = aux.path if aux else ""
    return ClassicalRepair(n_fill, n_left, filled, int((classes == LEFT).sum()), n_aux,
                           filled - n_aux if aux else 0,
                           outside=int((classes == NODATA).sum()),
                           rim_warning=rims.warning(os.path.basename(name)) if aux else None,
                           uncertainty_seconds=sigma.seconds if sigma is not None else 0.0)


def _block_cells(idx: np.ndarray, row0: int, rows: int, width: int
                 ) -> tuple[slice, np.ndarray]:
    """(the filled cells of rows row0…row0+rows in `idx`, sorted flat indices of the
    raster; their flat indices within those rows)."""
    a, b = np.searchsorted(idx, [row0 * width, (row0 + rows) * width])
    return slice(a, b), idx[a:b] - row0 * width


def _sigma_block(local: np.ndarray, sig: np.ndarray, rows: int, width: int) -> np.ndarray:
    """A block of UNCERTAINTY: σ on its filled cells (`local`, _block_cells), NaN elsewhere."""
    out = np.full((rows, width), np.nan, np.float32)
    out.flat[local] = sig
    return out


def first_fill_sigma(src: DemSource, fill: np.ndarray, writer: RasterWriter,
                     sigma: VoidSigma, monitor: Monitor, block_pixels: int = 1 << 20) -> None:
    """UNCERTAINTY of a repair that starts from the first fill and changes it little
    (METHOD=model on the input grid): σ of the first fill of each cell of `fill`, from the
    same group windows, written block by block through `writer` (nodata elsewhere)."""
    idx, _, _, sig, _ = _fill_groups(src, None, fill, monitor.sub(0.0, 0.9),
                                     4 * block_pixels, sigma, values=False)
    order = np.argsort(idx, kind="stable")
    idx, sig = idx[order], sig[order]
    g = src.grid
    for row0, rows in row_blocks(g.height, g.width, block_pixels):
        monitor.check()
        cells, local = _block_cells(idx, row0, rows, g.width)
        writer.write(_sigma_block(local, sig[cells], rows, g.width), row0, 0)
    monitor.progress(1.0)


def _fill_groups(src: DemSource, aux: Optional[DemSource], fill: np.ndarray,
                 monitor: Monitor, band_pixels: int, sigma: Optional[VoidSigma] = None,
                 values: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, RimStats]:
    """(flat cell indices, values, from the auxiliary?, σ (empty without `sigma`)) of every
    void cell, group by group; the rim statistics of the auxiliary. `values` False (no
    auxiliary): σ alone, on the cells the first fill would reach, values 0 (the first fill's
    solve is most of the time here)."""
    g = src.grid
    idx, vals, flags, sigmas = [], [], [], []
    rims = RimStats()
    total = max(int(fill.sum()), 1)
    done = 0
    grouped = group_windows(fill)   # once: the auxiliary's reader needs the windows first
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds, \
            (AuxReader(aux, g, superresolve=True, windows=[w for _, w in grouped[1]],
                       dem=src, monitor=monitor) if aux else nullcontext()) as reader:
        bands = RowBands(ds, src.band, band_pixels)   # the groups come in row order
        for win, unknown in void_groups(fill, grouped):
            monitor.check()
            r, c = win
            z = bands.window(r, c).astype(np.float64)
            z[unknown] = np.nan
            a = None
            if reader:
                a = reader.window(win)
                rims.add(z, a, unknown)
                # with UNCERTAINTY, σ's local variance crosses the void in the same solve
                v, f, dv = delta_fill(z, a, unknown, None if sigma is None else
                                      sigma.delta_field(z, a))
            else:
                v = (fill_window(z, unknown) if values else
                     np.where(solvable(z, unknown)[unknown], 0.0, np.nan))
                f, dv = np.zeros(int(unknown.sum()), bool), None
            rr, cc = np.nonzero(unknown)
            keep = np.isfinite(v)       # a group with no data around it stays nodata
            idx.append(((rr + r.start) * g.width + (cc + c.start))[keep])
            vals.append(v[keep].astype(np.float32))
            flags.append(f[keep])
            if sigma is not None:
                sigmas.append(sigma.window(z, unknown, a, f, dv)[keep])
            done += rr.size
            monitor.progress(done / total)
    cat = lambda parts, dtype: (np.concatenate(parts) if parts  # noqa: E731
                                else np.zeros(0, dtype))
    return (cat(idx, np.int64), cat(vals, np.float32), cat(flags, bool),
            cat(sigmas, np.float32), rims)


# Classical repair (METHOD=fill/delta, voidfill): masks of the input grid while the void
# groups are found (about 6 bytes per pixel), the filled cells, one group's window.
CLASSICAL_BYTES_PER_PIXEL, CLASSICAL_FIXED_BYTES = 8, 300_000_000


def classical_route(req: VoidRepairRequest, src, aux, profiles: list, monitor: Monitor,
                    started: float) -> VoidRepairResult:
    """METHOD=fill or delta on the input grid, streamed (voidfill)."""
    g = src.grid
    pixels = g.width * g.height
    if pixels > MAX_STREAM_PIXELS:
        raise DemSrError(
            f"The DEM has {g.width}×{g.height} pixels, more than the "
            f"{MAX_STREAM_PIXELS // 1_000_000} million that void repair indexes. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip).")
    require_room(profiles, output_names(req))
    need = CLASSICAL_BYTES_PER_PIXEL * pixels + CLASSICAL_FIXED_BYTES
    free = available_bytes()
    if free is not None and need > free:
        raise DemSrError(
            f"Void repair of a {g.width}×{g.height} DEM holds its void masks in memory and "
            f"needs about {gigabytes(need)}; {gigabytes(free)} is available. Close other "
            "programs or split the DEM into parts (Raster ▸ Extraction ▸ Clip).")
    sigma = VoidSigma() if req.uncertainty_path else None
    with atomic_outputs(profiles, monitor.info) as writers:
        r = repair_classical(src, aux, req.max_void_size, writers, monitor.sub(0.0, 0.99),
                             sigma=sigma)
        monitor.check()
    monitor.info(f"Input {g.width}×{g.height} px: {r.voids} void(s), {r.filled} cells filled"
                 + (f"; {r.left_voids} void(s) wider than {req.max_void_size:g} px left as "
                    "nodata" if r.left_voids else "")
                 + (f"; {r.outside} nodata cells touch the raster border: outside the DEM's "
                    "footprint, not voids, kept as nodata" if r.outside else "") + ".")
    if aux is not None:
        auxiliary_warnings(r.uncovered, r.filled, r.rim_warning, monitor)
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    detail = (f"{r.filled} filled pixels, {r.from_auxiliary} from the auxiliary DEM"
              if aux is not None else f"{r.filled} filled pixels")
    monitor.info(f"Wrote {written(req)} ({detail}) in {seconds:.1f} s"
                 + (f" (UNCERTAINTY took {r.uncertainty_seconds:.1f} s of it)" if sigma else "")
                 + ".")
    method = "delta" if aux is not None else "fill"
    return VoidRepairResult(req.output_path, req.mask_path, src.grid, r.voids, r.filled, r.left,
                            "cpu", seconds, method, r.from_auxiliary, req.uncertainty_path,
                            r.uncertainty_seconds)
