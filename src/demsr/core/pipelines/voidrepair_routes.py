"""Where Void repair runs: on the grid asked for (repair_here: the classical methods on the
input grid, or DS-HAT), or onto another grid with the voids repaired on the input grid first
(any METHOD), then the DEM onto the target grid by Super-resolve DEM's engine (finer, same
CRS, a factor the bundled models cover) or by GDAL (another CRS, a coarser grid);
FILLED_MASK by nearest neighbour, UNCERTAINTY bilinearly on the filled cells.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import numpy as np
import rasterio

from ..errors import DemSrError
from ..monitor import Monitor
from ..nodata.find import (MASK_AUXILIARY, MASK_FILLED, MASK_NODATA, NODATA, VALID)
from ..raster.grid import (Grid, is_finer, same_crs, same_grid)
from ..raster.io import GDAL_ENV, read_band
from ..raster.write import atomic_outputs, scratch_path
from ..raster.warp import warp
from .voidfill import classical_route
from .voidrepair_model import repair_model
from .voidrepair_request import (CLASSICAL, MAX_TARGET_PIXELS, VoidRepairRequest, VoidRepairResult,
                                 output_profiles, scratch_sigma, written)

def superresolve_route(src: Grid, dst: Grid) -> bool:
    """Whether dst is finer than src in the same CRS at a factor a bundled SR model covers:
    then voids are repaired on the input grid and Super-resolve DEM's engine (the same
    model path, streaming) takes the repaired DEM onto dst."""
    if same_grid(src, dst) or not same_crs(src, dst):
        return False
    from .model_upsampler import bundled_route

    return bundled_route(src, dst) is not None


def _on_input_grid(req: VoidRepairRequest, src, aux, method: str, monitor: Monitor,
                   dem_tmp: str, mask_tmp: str, sigma_tmp: Optional[str]) -> VoidRepairResult:
    """The repair on the input grid into temporary files (σ too when `sigma_tmp`); its log
    names them as what they are, not by their hidden names."""
    step = replace(monitor, info=lambda m: monitor.info(
        m.replace(dem_tmp, "the repaired input grid (temporary)")
         .replace(mask_tmp, "its mask (temporary)")
         .replace(sigma_tmp or dem_tmp, "its uncertainty (temporary)")))
    return repair_here(replace(req, output_path=dem_tmp, mask_path=mask_tmp,
                                uncertainty_path=sigma_tmp), src, src.grid,
                        aux, method, step, time.perf_counter())


def _sigma_rows(ds, dst: Grid, row0: int, rows: int, mask: np.ndarray) -> np.ndarray:
    """UNCERTAINTY rows row0…row0+rows of dst: the input grid's σ (dataset `ds`, written by
    the repair on the input grid) taken bilinearly onto dst, on its filled cells only
    (`mask`: those rows of FILLED_MASK); NaN elsewhere. It describes the void fill."""
    from rasterio.enums import Resampling

    from ..raster.warp import LOCAL_CRS, reproject_exact

    out = np.full((rows, dst.width), np.nan, np.float32)
    src_crs = ds.crs or LOCAL_CRS
    reproject_exact(rasterio.band(ds, 1), out, src_transform=ds.transform, src_crs=src_crs,
                    src_nodata=ds.nodata, dst_transform=dst.window_transform(row0, 0),
                    dst_crs=dst.crs if (dst.crs is not None and ds.crs is not None) else
                    src_crs, dst_nodata=np.nan, resampling=Resampling.bilinear)
    out[(mask != MASK_FILLED) & (mask != MASK_AUXILIARY)] = np.nan
    return out


def _commit(profiles: list, dem_path: str, dst: Grid, mask: np.ndarray, monitor: Monitor,
            sigma_path: Optional[str] = None) -> None:
    """OUTPUT (copied block by block from a finished temporary raster on dst), FILLED_MASK
    and, with `sigma_path` (σ on the input grid), UNCERTAINTY written together: all replace
    their destinations, or none does."""
    from contextlib import nullcontext

    from ..raster.tiles import row_blocks

    with atomic_outputs(profiles, monitor.info) as writers, \
            rasterio.Env(**GDAL_ENV), rasterio.open(dem_path) as ds, \
            (rasterio.open(sigma_path) if sigma_path else nullcontext()) as sds:
        for row0, rows in row_blocks(dst.height, dst.width):
            monitor.check()
            writers[0].write(read_band(ds, 1, rasterio.windows.Window(0, row0, dst.width,
                                                                      rows)), row0, 0)
            if sds is not None:
                writers[2].write(_sigma_rows(sds, dst, row0, rows, mask[row0:row0 + rows]),
                                 row0, 0)
        writers[1].write_raw(mask)
        monitor.check()


def _finish(req: VoidRepairRequest, dst: Grid, same: VoidRepairResult, mask: np.ndarray,
            how: str, device: str, started: float, monitor: Monitor) -> VoidRepairResult:
    filled = int(((mask == MASK_FILLED) | (mask == MASK_AUXILIARY)).sum())
    from_aux = int((mask == MASK_AUXILIARY).sum())
    # voids left by max_void_size, in target pixels (input count × area ratio)
    left = int(round(same.left_pixels * (same.grid.res[0] * same.grid.res[1])
                     / (dst.res[0] * dst.res[1])))
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {written(req)} ({filled} filled pixels; voids "
                 f"repaired on the input grid, then {how}) in {seconds:.1f} s"
                 + (" (UNCERTAINTY: the void fill's σ taken bilinearly onto the target grid)"
                    if req.uncertainty_path else "") + ".")
    return VoidRepairResult(req.output_path, req.mask_path, dst, same.voids, filled, left,
                            device, seconds, same.method, from_aux, req.uncertainty_path,
                            same.uncertainty_seconds)


def repair_then_superresolve(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
                              profiles: list, monitor: Monitor) -> VoidRepairResult:
    """The repair on the input grid (only what holds voids), then Super-resolve DEM's
    METHOD=model onto dst; the mask is the input-grid mask taken onto dst with nearest
    neighbour. Both outputs are committed together at the end."""
    from .superresolve import SuperResolveRequest, superresolve

    started = time.perf_counter()
    with scratch_path(req.output_path) as dem_tmp, scratch_path(req.mask_path) as mask_tmp, \
            scratch_path(req.output_path + ".sr") as sr_tmp, \
            scratch_sigma(req) as sigma_tmp:
        same = _on_input_grid(req, src, aux, method, monitor.sub(0.0, 0.45), dem_tmp,
                              mask_tmp, sigma_tmp)
        monitor.check()
        with rasterio.Env(**GDAL_ENV), rasterio.open(mask_tmp) as ds:
            src_mask = ds.read(1)
        mask = warp(src_mask, src.grid, dst, "nearest", nodata=MASK_NODATA, dtype=np.uint8)
        del src_mask
        sr = superresolve(SuperResolveRequest(dem_tmp, sr_tmp, grid=dst,
                                              method="model", device=req.device,
                                              tile_size=req.tile_size, batch_size=1),
                          replace(monitor.sub(0.45, 0.9), info=lambda m: monitor.info(
                              m.replace(sr_tmp, "the output (temporary)"))))
        _commit(profiles, sr_tmp, dst, mask, monitor.sub(0.9, 0.99), sigma_tmp)
    return _finish(req, dst, same, mask, sr.method, sr.device, started, monitor)


def repair_then_warp(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
                      profiles: list, monitor: Monitor) -> VoidRepairResult:
    """A classical repair on the input grid, then the DEM onto dst as DS-HAT's inputs go
    there (dshat_inputs.onto_grid: Lanczos when finer, area average when coarser) and the
    mask by nearest neighbour; for another CRS, a coarser grid or a factor no bundled model
    covers."""
    from .dshat_inputs import onto_grid

    started = time.perf_counter()
    pixels = dst.width * dst.height
    if pixels > MAX_TARGET_PIXELS:
        raise DemSrError(
            f"The target grid has {dst.width}×{dst.height} pixels, more than the "
            f"{MAX_TARGET_PIXELS // 1_000_000} million that void repair holds in memory for "
            "another CRS or a coarser grid. Split the DEM into parts (Raster ▸ Extraction ▸ "
            "Clip) or choose a coarser target.")
    with scratch_path(req.output_path) as dem_tmp, scratch_path(req.mask_path) as mask_tmp, \
            scratch_sigma(req) as sigma_tmp:
        same = _on_input_grid(req, src, aux, method, monitor.sub(0.0, 0.6), dem_tmp,
                              mask_tmp, sigma_tmp)
        monitor.check()
        with rasterio.Env(**GDAL_ENV), rasterio.open(dem_tmp) as ds, \
                rasterio.open(mask_tmp) as ms:
            dem, src_mask = read_band(ds, 1), ms.read(1)
        classes = np.where(src_mask == MASK_NODATA, NODATA, VALID).astype(np.uint8)
        dem_t, cls_t = onto_grid(dem, classes, src.grid, dst)
        del dem, classes
        mask = warp(src_mask, src.grid, dst, "nearest", nodata=MASK_NODATA, dtype=np.uint8)
        del src_mask
        dem_t = np.where(cls_t < NODATA, dem_t, np.nan).astype(np.float32)
        del cls_t
        if not np.isfinite(dem_t).any():
            raise DemSrError("The target grid does not overlap the DEM's data: every target "
                             "pixel would be nodata. Check TARGET_GRID (its extent and CRS).")
        with atomic_outputs(profiles, monitor.info) as writers:
            writers[0].write(dem_t, 0, 0)
            writers[1].write_raw(mask)
            if sigma_tmp:
                with rasterio.Env(**GDAL_ENV), rasterio.open(sigma_tmp) as sds:
                    writers[2].write(_sigma_rows(sds, dst, 0, dst.height, mask), 0, 0)
            monitor.check()
    kind = "Lanczos" if is_finer(src.grid, dst) else "area average"
    return _finish(req, dst, same, mask, f"GDAL {kind} onto the target grid", "cpu", started,
                   monitor)


def repair_here(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
                 monitor: Monitor, started: float) -> VoidRepairResult:
    """The repair onto dst by `method` (classical methods: dst is the input grid)."""
    profiles = output_profiles(req, src, dst)
    if method in CLASSICAL:
        return classical_route(req, src, aux if method == "delta" else None, profiles,
                               monitor, started)
    return repair_model(req, src, dst, aux, profiles, monitor, started)
