"""Void repair's METHOD=model: DS-HAT.

First fill, grid change, terrain derivatives, spectral bands and the auxiliary channel come
from dshat_inputs.prepare (shared with training). DS-HAT runs tile by tile with its halo
(edges repeated), so tiles agree; on the input's own grid valid cells are kept exactly and
only voids take the model's values, on another grid its output is used everywhere (a
pairs-trained model runs on its target grid: grid_change_model). On the input's own grid
with the terrain channels only, the repair streams (voidrepair_stream: a global pass, flow
routing being what grows with the raster, then block by block); otherwise everything after
reading is held in memory on the target grid (under 100 bytes per target pixel at peak, plus
PyTorch), MAX_TARGET_PIXELS guarding against runaway grids. Either way a run that would need
more memory than is available stops before it starts, saying so.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

import numpy as np
import rasterio

from ..devices import select_device
from ..errors import DemSrError
from ..memory import available_bytes, gigabytes
from ..nets.output_check import check_output_tile
from ..monitor import Monitor
from ..nodata.auxiliary import RimStats, auxiliary_on
from ..nodata.find import (FILLED, LEFT, MASK_AUXILIARY, MASK_NODATA, NODATA, VALID, classify_voids,
                           require_valid, warn_sentinels)
from ..raster.grid import (Grid, grid_ratio, same_crs, same_grid)
from ..raster.io import GDAL_ENV, read_band
from ..raster.write import atomic_outputs
from ..raster.space import require_room
from ..raster.tiles import grid_tiles, sparse_windows, window
from ..terrain import DSHAT_DERIVATIVES
from .dshat_inputs import (Prepared, check_auxiliary, check_channels, load_model, prepare,
                           read_spectral)
from .voidrepair_request import (MAX_STREAM_PIXELS, MAX_TARGET_PIXELS, VoidRepairRequest,
                                 VoidRepairResult, auxiliary_warnings, output_names, written)

# Peak memory of a run, measured on 1–9 Mpx targets: about 75 bytes per target pixel plus a
# fixed 0.75 GB (PyTorch, model, tiles); rounded up.
BYTES_PER_TARGET_PIXEL, FIXED_BYTES = 100, 800_000_000


# Peak RSS of whole qgis_process runs (QGIS, PyTorch and model included), 1 % voids:
# 0.72 / 0.69 GB on 2000² SRTM / lidar mosaics, 1.37 / 1.40 GB on 4000² ones, i.e.
# 54–59 bytes per input pixel plus 0.46–0.51 GB; rounded up.
STREAM_BYTES_PER_PIXEL, STREAM_FIXED_BYTES = 65, 800_000_000


MIN_TILE = 64                 # smallest network tile side when voids are sparse


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
              monitor: Monitor, name: str = "DS-HAT") -> np.ndarray:
    """The model's DEM on the whole target grid, tile by tile with halo; every output window
    checked (core.nets.output_check) before it is used."""
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
            check_output_tile(y[k, 0], dem[k, 0], name, f"target rows {r}–{r + h - 1}, "
                              f"columns {c}–{c + w - 1}")
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


# A pairs model's trained grid change covers the requested one within this ratio.
GRID_FACTOR_TOLERANCE = 1.25


def grid_change_model(ckpt, path: str, src: Grid, dst: Grid, monitor: Monitor) -> bool:
    """Whether the DS-HAT checkpoint was trained for the grid change itself (pairs mode: LR
    DEM → a reference's finer grid, the DS-HAT paper's use): then it runs on the target grid,
    as it was trained, instead of repairing on the input grid and leaving the grid change to
    Super-resolve DEM's models. Warns when the requested factor is outside what it saw."""
    prov = ckpt.provenance or {}
    if prov.get("mode") != "pairs" and prov.get("task") != "grid change":
        return False
    name = os.path.basename(path)
    trained = [float(f) for f in prov.get("grid_factors") or []]
    f = (grid_ratio(src, dst) if same_crs(src, dst) else
         float(np.sqrt(src.res[0] * src.res[1] / (dst.res[0] * dst.res[1]))))
    said = "/".join(f"×{t:g}" for t in trained) or "an unrecorded factor"
    monitor.info(f"Model {name} was trained from LR/reference pairs for the grid change "
                 f"({said}): it runs on the target grid (×{f:.4g}).")
    if trained and not (min(trained) / GRID_FACTOR_TOLERANCE <= f
                        <= max(trained) * GRID_FACTOR_TOLERANCE):
        monitor.warning(f"Model {name} was trained for {said}; this target grid is ×{f:.4g}, "
                        "outside that: expect a poorer result, or train a model for this "
                        "factor.")
    return True


def repair_model(req: VoidRepairRequest, src, dst: Grid, aux, profiles: list,
                  monitor: Monitor, started: float, loaded: Optional[tuple] = None
                  ) -> VoidRepairResult:
    """METHOD=model: DS-HAT, streamed on the input grid, in memory on another grid or with
    an auxiliary DEM; `loaded` = load_model's (checkpoint, path) when the caller has read it
    already."""
    ckpt, model_path = loaded or load_model(req.model_path, aux is not None, req.device)
    check_auxiliary(ckpt, model_path, aux is not None)
    channels = list(ckpt.hparams["aux_channels"])
    stream = (same_grid(src.grid, dst) and not req.spectral_path and not req.in_memory
              and channels == list(DSHAT_DERIVATIVES))
    if req.uncertainty_path:
        _model_uncertainty(req, stream, monitor)
    pixels = dst.width * dst.height
    limit = MAX_STREAM_PIXELS if stream else MAX_TARGET_PIXELS
    if pixels > limit:
        held = "routes flow over" if stream else "holds in memory"
        raise DemSrError(
            f"The target grid has {dst.width}×{dst.height} pixels, more than the "
            f"{limit // 1_000_000} million that void repair {held}. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip) or choose a coarser target.")
    require_room(profiles, output_names(req))
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
    from ..nets.trust import integrity_note

    if integrity_note(ckpt, model_path):
        monitor.info(integrity_note(ckpt, model_path))
    n_spec = check_channels(ckpt, model_path, bool(req.spectral_path))
    spectral = read_spectral(req.spectral_path, n_spec) if n_spec else None
    choice = select_device(req.device)
    monitor.info(f"DS-HAT model {os.path.basename(model_path)} ({', '.join(channels)}); device: "
                 f"{choice.description}." + (f" Note: {choice.note}." if choice.note else ""))
    if stream:
        return _repair_streamed(req, src, ckpt, model_path, choice, profiles, monitor, started)
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
    a = auxiliary_on(aux, src.grid) if aux is not None else None
    prep = prepare(dem, src.grid, dst, classes, spectral, monitor.sub(0.0, 0.4), a, channels)
    fill_t = prep.classes == FILLED
    filled = int(fill_t.sum())
    if a is not None:
        rims = RimStats()
        rims.add(dem, a, classes == FILLED)
        auxiliary_warnings(filled - int((prep.from_auxiliary & fill_t).sum()), filled,
                            rims.warning(os.path.basename(aux.path)), monitor)
    del dem, a
    model = ckpt.build_for_inference(choice.device)
    pred = run_model(model, prep, choice.device, req.tile_size, req.batch_size,
                     monitor.sub(0.4, 0.95), os.path.basename(model_path))
    out = assemble(pred, prep)
    left_t = int((prep.classes == LEFT).sum())
    mask = np.where(prep.classes >= NODATA, MASK_NODATA, fill_t).astype(np.uint8)
    if prep.from_auxiliary is not None:
        mask[fill_t & prep.from_auxiliary] = MASK_AUXILIARY
    monitor.check()
    with atomic_outputs(profiles, monitor.info) as (writer, mw):
        writer.write(out, 0, 0)
        mw.write_raw(mask)
        monitor.check()
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({filled} filled pixels) in "
                 f"{seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, dst, n_fill, filled, left_t,
                            choice.description, seconds, "model",
                            int((mask == MASK_AUXILIARY).sum()))


def _model_uncertainty(req: VoidRepairRequest, stream: bool, monitor: Monitor) -> None:
    """UNCERTAINTY with METHOD=model: the first fill's σ, on the streamed input-grid route
    only (the bundled DS-HAT changes the first fill by under 2 %, and the first fill's σ
    holds its errors as well: docs/quality.md); refused on the other routes."""
    if not stream:
        raise DemSrError(
            "UNCERTAINTY with METHOD=model is given on the input grid's DS-HAT route only "
            "(a terrain-only model, no SPECTRAL, no AUXILIARY; voids repaired on the input "
            "grid even for a finer TARGET_GRID), where the first fill's σ describes its "
            "errors. Choose METHOD=fill or delta, or leave UNCERTAINTY out.")
    monitor.info("UNCERTAINTY: the first fill's σ, which DS-HAT corrects by little; it is "
                 "calibrated on the bundled model's errors" + (
                     ": for another MODEL check it with Evaluate DEM (UNCERTAINTY input) on "
                     "a DEM with known voids." if req.model_path else "."))


def _repair_streamed(req: VoidRepairRequest, src, ckpt, model_path: str, choice, profiles,
                     monitor: Monitor, started: float) -> VoidRepairResult:
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
        sigma = None
        with atomic_outputs(profiles, monitor.info) as writers:
            vs.write_streamed(src, gp, batch_infer(model, choice.device), halo, req.batch_size,
                              writers[:2], MASK_NODATA,
                              monitor.sub(0.4, 0.9 if req.uncertainty_path else 0.99),
                              os.path.basename(model_path))
            monitor.check()
            if req.uncertainty_path:
                from ..uncertainty.voids import VoidSigma
                from .voidfill import first_fill_sigma

                sigma = VoidSigma()
                first_fill_sigma(src, _to_fill(gp.scratch), writers[2], sigma,
                                 monitor.sub(0.9, 0.99))
                monitor.check()
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {written(req)} ({gp.filled} filled pixels) in {seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, src.grid, gp.voids, gp.filled,
                            gp.left, choice.description, seconds, "model",
                            uncertainty_path=req.uncertainty_path,
                            uncertainty_seconds=sigma.seconds if sigma is not None else 0.0)


def _to_fill(scratch: str) -> np.ndarray:
    """The cells to fill (1 byte per input pixel), read by row blocks from the streamed
    route's temporary rasters (their classes band)."""
    from . import voidrepair_stream as vs
    from ..raster.tiles import row_blocks

    band = vs.SCRATCH_BANDS.index("classes") + 1
    with rasterio.Env(**GDAL_ENV), rasterio.open(scratch) as ds:
        fill = np.zeros((ds.height, ds.width), bool)
        for row0, rows in row_blocks(ds.height, ds.width):
            fill[row0:row0 + rows] = ds.read(
                band, window=rasterio.windows.Window(0, row0, ds.width, rows)) == FILLED
    return fill
