"""Void repair and super-resolution onto a target grid with DS-HAT.

1. Target grid: a reference raster's grid (CRS, extent, pixel size), or the
   input's extent at a given pixel size (anchored top-left, as gdalwarp -tr),
   or the input's own grid (pure void repair).
2. Voids are the input's nodata regions that do not touch the raster border
   (nodata connected to the border is outside the DEM's footprint and stays
   nodata). Voids wider than `max_void_size` input pixels may be left as nodata.
3-5. First fill, grid change, terrain derivatives and spectral bands:
   dshat_inputs.prepare (shared with training).
6. DS-HAT runs tile by tile with its halo (edges repeated), so tiles agree.
   On the input's own grid, valid cells are kept exactly and only voids take
   the model's values; on another grid the model's output is used everywhere.

On the input's own grid (without spectral bands) the repair streams
(voidrepair_stream: a global pass, flow routing being what grows with the raster,
then block by block). Otherwise everything after reading is held in memory on the
target grid (under 100 bytes per target pixel at peak, plus PyTorch);
MAX_TARGET_PIXELS guards against runaway grids. Either way a run that would need
more memory than is available stops before it starts, saying so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import rasterio

from ..devices import select_device
from ..errors import DemSrError
from ..memory import available_bytes, gigabytes
from ..monitor import Monitor
from ..nodata.find import (FILLED, LEFT, NODATA, VALID, classify_voids, require_valid,
                          warn_sentinels)
from ..paths import check_distinct_paths
from ..raster.grid import Grid, grid_ratio, overlap_bounds, same_crs, same_grid, target_grid
from ..raster.io import (GDAL_ENV, atomic_output, atomic_outputs, check_output_path,
                         gtiff_profile, open_dem, output_nodata, read_band,
                         scratch_path)
from ..raster.space import require_room
from ..raster.warp import warp
from ..raster.tiles import grid_tiles, sparse_windows, window
from .dshat_inputs import Prepared, check_channels, load_model, prepare, read_spectral

MAX_TARGET_PIXELS = 100_000_000
# Peak memory of a run, measured on 1–9 Mpx targets: about 75 bytes per target pixel plus a
# fixed 0.75 GB (PyTorch, model, tiles); rounded up.
BYTES_PER_TARGET_PIXEL, FIXED_BYTES = 100, 800_000_000
# Streamed repair on the input grid (voidrepair_stream): flow routing over the whole grid is
# what stays in memory (measured: see STREAM_* below and docs/benchmarks.md).
MAX_STREAM_PIXELS = 2_000_000_000   # flow routing indexes cells with int32
# Peak RSS of whole qgis_process runs (QGIS, PyTorch and model included), 1 % voids:
# 0.72 / 0.69 GB on 2000² SRTM / lidar mosaics, 1.37 / 1.40 GB on 4000² ones, i.e.
# 54–59 bytes per input pixel plus 0.46–0.51 GB; rounded up.
STREAM_BYTES_PER_PIXEL, STREAM_FIXED_BYTES = 65, 800_000_000
MIN_TILE = 64                 # smallest network tile side when voids are sparse
MASK_NODATA = 255


@dataclass
class VoidRepairRequest:
    input_path: str
    output_path: str
    mask_path: str
    band: int = 1
    target_grid_path: Optional[str] = None    # reference raster whose grid is used
    target_resolution: Optional[float] = None  # pixel size in the input's CRS units
    spectral_path: Optional[str] = None       # raster whose bands 1–4 are Sentinel-2 B1–B4
    model_path: Optional[str] = None          # None = bundled default
    device: str = "auto"
    max_void_size: float = 0.0                # input px; wider voids stay nodata (0 = fill all)
    tile_size: int = 384
    batch_size: int = 2
    in_memory: bool = False                   # hold the grid in memory even on the input grid


@dataclass
class VoidRepairResult:
    output_path: str
    mask_path: str
    grid: Grid
    voids: int            # void groups found on the input grid
    filled_pixels: int    # target pixels filled
    left_pixels: int      # target pixels of voids left as nodata (max_void_size)
    device: str
    seconds: float


def batch_infer(model, device: str) -> Callable:
    """(dem, voids, aux, sigma) batches of windows → the model's DEM (numpy, float32).
    `model`: the core.backends.Network of ckpt.build_for_inference (PyTorch on `device`,
    or ONNX Runtime), or a bare torch module (run with PyTorch on `device`)."""
    from ..backends import Network, TorchNetwork
    from .model_upsampler import window_offset

    if not isinstance(model, Network):
        model = TorchNetwork(model, device)

    def infer(dem: np.ndarray, voids: np.ndarray, aux: np.ndarray, sigma: float) -> np.ndarray:
        s = np.full((len(dem), 1, 1, 1), float(sigma), np.float32)
        dem = dem.astype(np.float32, copy=False)
        offset = window_offset(dem)  # DS-HAT moves with its DEM too (see window_offset)
        return model.run(dem - offset, voids.astype(np.float32, copy=False),
                         aux.astype(np.float32, copy=False), s) + offset
    return infer


def run_model(model, prep: Prepared, device: str, tile_size: int, batch_size: int,
              monitor: Monitor) -> np.ndarray:
    """The model's DEM on the whole target grid, tile by tile with halo."""
    halo = int(model.halo)
    H, W = prep.dem.shape
    out = np.empty((H, W), np.float32)
    mask = prep.voids
    if prep.same_grid:  # valid cells are kept as they are: only tiles holding voids need the net
        out[:] = prep.dem
        _, tiles = sparse_windows(mask > 0, tile_size, halo, MIN_TILE)
    else:
        tiles = grid_tiles((H, W), tile_size)
    infer = batch_infer(model, device)
    for i in range(0, len(tiles), max(1, batch_size)):
        monitor.check()
        batch = tiles[i:i + batch_size]
        hs = max(t[2] for t in batch) + 2 * halo
        ws = max(t[3] for t in batch) + 2 * halo
        win = lambda a, t: window(a, t[0] - halo, t[1] - halo, hs, ws)  # noqa: E731
        dem = np.stack([win(prep.dem, t) for t in batch])[:, None]
        msk = np.stack([win(mask, t) for t in batch])[:, None]
        aux = np.stack([win(prep.aux, t) for t in batch])
        y = infer(dem, msk, aux, prep.sigma)
        for k, (r, c, h, w) in enumerate(batch):
            out[r:r + h, c:c + w] = y[k, 0, halo:halo + h, halo:halo + w]
        monitor.progress(min(1.0, (i + len(batch)) / len(tiles)))
    return out


def assemble(pred: np.ndarray, prep: Prepared) -> np.ndarray:
    """Final DEM: NaN outside the footprint; on the input grid valid cells are kept."""
    out = np.where(prep.classes >= NODATA, np.nan, pred).astype(np.float32)
    if prep.same_grid:
        keep = prep.classes == VALID
        out[keep] = prep.original[keep]
    return out


def _overlaps(src: Grid, dst: Grid) -> bool:
    try:
        return overlap_bounds(dst, src) is not None
    except ValueError:  # no transformation between the CRSs
        return False


def superresolve_route(src: Grid, dst: Grid) -> bool:
    """Whether dst is finer than src in the same CRS at a factor a bundled SR model covers:
    then voids are repaired on the input grid and Super-resolve DEM's engine (the same
    model path, streaming) takes the repaired DEM onto dst."""
    if same_grid(src, dst) or not same_crs(src, dst):
        return False
    from .model_upsampler import resolve_model_path

    try:
        resolve_model_path(None, src, dst)
    except DemSrError:
        return False
    return True


def _repair_then_superresolve(req: VoidRepairRequest, src, dst: Grid,
                              monitor: Monitor) -> VoidRepairResult:
    """DS-HAT on the input grid (only tiles with voids run), then METHOD=model onto dst; the
    mask is the input-grid mask taken onto dst with nearest neighbour."""
    from dataclasses import replace

    from .superresolve import SuperResolveRequest, superresolve

    started = time.perf_counter()
    with scratch_path(req.output_path) as dem_tmp, scratch_path(req.mask_path) as mask_tmp:
        # its log names the temporary files as what they are, not by their hidden names
        step = replace(monitor.sub(0.0, 0.5), info=lambda m: monitor.info(
            m.replace(dem_tmp, "the repaired input grid (temporary)")
             .replace(mask_tmp, "its mask (temporary)")))
        same = voidrepair(replace(req, output_path=dem_tmp, mask_path=mask_tmp,
                                  target_grid_path=None, target_resolution=None), step)
        monitor.check()
        with rasterio.Env(**GDAL_ENV), rasterio.open(mask_tmp) as ds:
            src_mask = ds.read(1)
        mask = warp(src_mask, src.grid, dst, "nearest", nodata=MASK_NODATA, dtype=np.uint8)
        del src_mask
        sr = superresolve(SuperResolveRequest(dem_tmp, req.output_path, grid=dst,
                                              method="model", device=req.device,
                                              tile_size=req.tile_size, batch_size=1),
                          monitor.sub(0.5, 0.98))
        try:
            with atomic_output(req.mask_path, gtiff_profile(dst, MASK_NODATA,
                                                            dtype="uint8")) as mw:
                mw.ds.write(mask, 1)
        except BaseException:
            os.remove(req.output_path)
            raise
    filled = int((mask == 1).sum())
    # voids left by max_void_size, in target pixels (input count × area ratio)
    left = int(round(same.left_pixels * grid_ratio(src.grid, dst) ** 2))
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({filled} filled pixels; voids "
                 f"repaired on the input grid, then {sr.method}) in {seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, dst, same.voids, filled, left,
                            sr.device, seconds)


def voidrepair(req: VoidRepairRequest, monitor: Optional[Monitor] = None) -> VoidRepairResult:
    monitor = monitor or Monitor()
    started = time.perf_counter()
    check_distinct_paths({"INPUT": req.input_path, "TARGET_GRID": req.target_grid_path,
                          "SPECTRAL": req.spectral_path, "MODEL": req.model_path},
                         {"OUTPUT": req.output_path, "FILLED_MASK": req.mask_path})
    src = open_dem(req.input_path, req.band)
    check_output_path(req.output_path, monitor.info)
    check_output_path(req.mask_path, monitor.info)
    if req.target_grid_path and req.target_resolution:
        monitor.warning("Both TARGET_GRID and TARGET_RESOLUTION are set: TARGET_GRID wins.")
    reference = open_dem(req.target_grid_path, 1).grid if req.target_grid_path else None
    dst = target_grid(src.grid, reference, req.target_resolution)
    if not _overlaps(src.grid, dst):
        raise DemSrError("The target grid does not overlap the input DEM (after reprojection "
                         "to its CRS): choose a target grid that covers the DEM.")
    if superresolve_route(src.grid, dst):
        return _repair_then_superresolve(req, src, dst, monitor)
    stream = same_grid(src.grid, dst) and not req.spectral_path and not req.in_memory
    pixels = dst.width * dst.height
    limit = MAX_STREAM_PIXELS if stream else MAX_TARGET_PIXELS
    if pixels > limit:
        held = "routes flow over" if stream else "holds in memory"
        raise DemSrError(
            f"The target grid has {dst.width}×{dst.height} pixels, more than the "
            f"{limit // 1_000_000} million that void repair {held}. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip) or choose a coarser target.")
    nodata = output_nodata(src.nodata)
    profiles = [(req.output_path, gtiff_profile(dst, nodata)),
                (req.mask_path, gtiff_profile(dst, MASK_NODATA, dtype="uint8"))]
    require_room(profiles, "OUTPUT and FILLED_MASK")
    per_pixel, fixed = ((STREAM_BYTES_PER_PIXEL, STREAM_FIXED_BYTES) if stream
                        else (BYTES_PER_TARGET_PIXEL, FIXED_BYTES))
    need = per_pixel * pixels + fixed
    free = available_bytes()
    if free is not None and need > free:
        what = ("routes flow over the whole input grid in memory" if stream
                else "holds it in memory")
        raise DemSrError(
            f"Void repair onto a {dst.width}×{dst.height} grid {what} and needs "
            f"about {gigabytes(need)}; {gigabytes(free)} is available. Close other programs, "
            "split the DEM into parts (Raster ▸ Extraction ▸ Clip), or choose a coarser target.")
    ckpt, model_path = load_model(req.model_path)
    from ..nets.checkpoint import integrity_note

    if integrity_note(ckpt, model_path):
        monitor.info(integrity_note(ckpt, model_path))
    n_spec = check_channels(ckpt, model_path, bool(req.spectral_path))
    spectral = read_spectral(req.spectral_path, n_spec) if n_spec else None
    choice = select_device(req.device)
    channels = ", ".join(ckpt.hparams["aux_channels"])
    monitor.info(f"DS-HAT model {os.path.basename(model_path)} ({channels}); device: "
                 f"{choice.description}." + (f" Note: {choice.note}." if choice.note else ""))
    if stream:
        return _repair_streamed(req, src, ckpt, choice, profiles, monitor, started)
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        dem = read_band(ds, src.band)
    require_valid(int(np.isfinite(dem).sum()), src.path, src.band)
    warn_sentinels(dem, src, monitor)
    monitor.check()
    classes, n_fill, n_left = classify_voids(dem, req.max_void_size)
    monitor.info(f"Input {src.grid.width}×{src.grid.height} px: {n_fill} void(s), "
                 f"{int((classes == FILLED).sum())} cells to fill"
                 + (f"; {n_left} void(s) wider than {req.max_void_size:g} px left as nodata"
                    if n_left else "")
                 + f". Target grid {dst.width}×{dst.height} px of "
                 f"{dst.res[0]:.6g}×{dst.res[1]:.6g}.")
    prep = prepare(dem, src.grid, dst, classes, spectral, monitor.sub(0.0, 0.4))
    del dem
    model = ckpt.build_for_inference(choice.device)
    pred = run_model(model, prep, choice.device, req.tile_size, req.batch_size,
                     monitor.sub(0.4, 0.95))
    out = assemble(pred, prep)
    left_t = int((prep.classes == LEFT).sum())
    mask = np.where(prep.classes >= NODATA, MASK_NODATA, prep.classes == FILLED).astype(np.uint8)
    monitor.check()
    with atomic_outputs(profiles, monitor.info) as (writer, mw):
        writer.write(out, 0, 0)
        mw.write_raw(mask)
        monitor.check()
    filled = int((prep.classes == FILLED).sum())
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({filled} filled pixels) in "
                 f"{seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, dst, n_fill, filled, left_t,
                            choice.description, seconds)


def _repair_streamed(req: VoidRepairRequest, src, ckpt, choice, profiles, monitor: Monitor,
                     started: float) -> VoidRepairResult:
    """On the input's own grid: global pass, then block by block (voidrepair_stream)."""
    from . import voidrepair_stream as vs
    from .dshat_inputs import SIGMA_RADIUS

    model = ckpt.build_for_inference(choice.device)
    halo = int(model.halo)
    with vs.scratch_for(req.output_path) as scratch:
        gp = vs.global_pass(src, req.max_void_size, halo, req.tile_size, MIN_TILE,
                            SIGMA_RADIUS, scratch, monitor.sub(0.0, 0.4))
        g = src.grid
        monitor.info(f"Input {g.width}×{g.height} px: {gp.voids} void(s), {gp.filled} cells to "
                     "fill" + (f"; {gp.left_voids} void(s) wider than {req.max_void_size:g} px "
                               "left as nodata" if gp.left_voids else "")
                     + f"; {len(gp.tiles)} network window(s) in tiles of {gp.tile_side} px, "
                     "streamed.")
        monitor.check()
        with atomic_outputs(profiles, monitor.info) as writers:
            vs.write_streamed(src, gp, batch_infer(model, choice.device), halo, req.batch_size,
                              writers, MASK_NODATA, monitor.sub(0.4, 0.99))
            monitor.check()
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({gp.filled} filled pixels) in "
                 f"{seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, src.grid, gp.voids, gp.filled,
                            gp.left, choice.description, seconds)
