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

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np
import rasterio

from ..devices import select_device
from ..errors import DemSrError
from ..memory import available_bytes, gigabytes
from ..nets.output_check import check_output_tile
from ..monitor import Monitor
from ..nodata.auxiliary import RimStats, auxiliary_on, open_auxiliary
from ..nodata.find import (FILLED, LEFT, MASK_AUXILIARY, MASK_FILLED, MASK_NODATA, NODATA,
                          VALID, classify_voids, require_valid, warn_sentinels)
from ..paths import check_distinct_paths
from ..raster.grid import (Grid, grid_ratio, is_finer, overlap_bounds, same_crs, same_grid,
                           target_grid)
from ..raster.io import (GDAL_ENV, atomic_outputs, check_output_path,
                         gtiff_profile, open_dem, output_nodata, read_band,
                         scratch_path)
from ..raster.space import require_room
from ..raster.warp import warp
from ..raster.tiles import grid_tiles, sparse_windows, window
from ..terrain import DSHAT_DERIVATIVES
from .dshat_inputs import (Prepared, check_auxiliary, check_channels, load_model, prepare,
                           read_spectral)

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
# Classical repair (METHOD=fill/delta, voidfill): masks of the input grid while the void
# groups are found (about 6 bytes per pixel), the filled cells, one group's window.
CLASSICAL_BYTES_PER_PIXEL, CLASSICAL_FIXED_BYTES = 8, 300_000_000

METHODS = ("auto", "fill", "delta", "model")
CLASSICAL = ("fill", "delta")
# Why METHOD=auto picks what it picks: the held-out figures of docs/quality.md (RMSE in voids,
# geometric mean over the validation DEMs, scripts/evaluate_voids.py).
AUTO_FILL_WHY = ("the bundled terrain-only DS-HAT changes the biharmonic first fill by under "
                 "2 % in voids on held-out DEMs (docs/quality.md) at several times the time")
AUTO_DELTA_WHY = ("with a second DEM, delta surface fill had 0.38× the first fill's RMSE in "
                  "voids on held-out DEMs, 0.60× on a real pair (docs/quality.md); DS-HAT "
                  "models trained with auxiliary DEMs did not beat it on the real pair")


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
    method: str = "auto"                      # auto, fill, delta or model (METHODS)
    auxiliary_path: Optional[str] = None      # a second DEM of the area (any CRS, resolution)
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
    method: str = ""
    from_auxiliary: int = 0   # target pixels filled from the auxiliary DEM


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
    from .model_upsampler import bundled_route

    return bundled_route(src, dst) is not None


def _on_input_grid(req: VoidRepairRequest, src, aux, method: str, monitor: Monitor,
                   dem_tmp: str, mask_tmp: str) -> VoidRepairResult:
    """The repair on the input grid into two temporary files; its log names them as what
    they are, not by their hidden names."""
    step = replace(monitor, info=lambda m: monitor.info(
        m.replace(dem_tmp, "the repaired input grid (temporary)")
         .replace(mask_tmp, "its mask (temporary)")))
    return _repair_here(replace(req, output_path=dem_tmp, mask_path=mask_tmp), src, src.grid,
                        aux, method, step, time.perf_counter())


def _commit(profiles: list, dem_path: str, dst: Grid, mask: np.ndarray, monitor: Monitor
            ) -> None:
    """OUTPUT (copied block by block from a finished temporary raster on dst) and
    FILLED_MASK written together: both replace their destinations, or neither does."""
    from ..raster.tiles import row_blocks

    with atomic_outputs(profiles, monitor.info) as (writer, mw), \
            rasterio.Env(**GDAL_ENV), rasterio.open(dem_path) as ds:
        for row0, rows in row_blocks(dst.height, dst.width):
            monitor.check()
            writer.write(read_band(ds, 1, rasterio.windows.Window(0, row0, dst.width, rows)),
                         row0, 0)
        mw.write_raw(mask)
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
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({filled} filled pixels; voids "
                 f"repaired on the input grid, then {how}) in {seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, dst, same.voids, filled, left,
                            device, seconds, same.method, from_aux)


def _repair_then_superresolve(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
                              profiles: list, monitor: Monitor) -> VoidRepairResult:
    """The repair on the input grid (only what holds voids), then Super-resolve DEM's
    METHOD=model onto dst; the mask is the input-grid mask taken onto dst with nearest
    neighbour. Both outputs are committed together at the end."""
    from .superresolve import SuperResolveRequest, superresolve

    started = time.perf_counter()
    with scratch_path(req.output_path) as dem_tmp, scratch_path(req.mask_path) as mask_tmp, \
            scratch_path(req.output_path + ".sr") as sr_tmp:
        same = _on_input_grid(req, src, aux, method, monitor.sub(0.0, 0.45), dem_tmp,
                              mask_tmp)
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
        _commit(profiles, sr_tmp, dst, mask, monitor.sub(0.9, 0.99))
    return _finish(req, dst, same, mask, sr.method, sr.device, started, monitor)


def _repair_then_warp(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
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
    with scratch_path(req.output_path) as dem_tmp, scratch_path(req.mask_path) as mask_tmp:
        same = _on_input_grid(req, src, aux, method, monitor.sub(0.0, 0.6), dem_tmp,
                              mask_tmp)
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
        with atomic_outputs(profiles, monitor.info) as (writer, mw):
            writer.write(dem_t, 0, 0)
            mw.write_raw(mask)
            monitor.check()
    kind = "Lanczos" if is_finer(src.grid, dst) else "area average"
    return _finish(req, dst, same, mask, f"GDAL {kind} onto the target grid", "cpu", started,
                   monitor)


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


def choose_method(req: VoidRepairRequest, has_aux: bool) -> tuple[str, str]:
    """(method, why) for the request; errors on a method that cannot run."""
    asked = (req.method or "auto").lower()
    if asked not in METHODS:
        raise DemSrError(f"Unknown METHOD '{req.method}'. Use one of: {', '.join(METHODS)}.")
    if asked == "delta" and not has_aux:
        raise DemSrError("METHOD=delta fills voids from a second DEM of the area: give it as "
                         "AUXILIARY (any CRS and resolution), or use METHOD=fill or auto.")
    if asked in CLASSICAL and req.spectral_path:
        raise DemSrError(f"SPECTRAL is used only by METHOD=model; METHOD={asked} does not read "
                         "it. Clear SPECTRAL, or choose METHOD=model with a model trained with "
                         "spectral bands.")
    if asked != "auto":
        return asked, "as chosen"
    if req.model_path or req.spectral_path:
        return "model", "a MODEL or SPECTRAL was given"
    if has_aux:
        return "delta", AUTO_DELTA_WHY
    return "fill", AUTO_FILL_WHY


METHOD_NAMES = {"fill": "biharmonic first fill", "delta": "delta surface fill",
                "model": "DS-HAT model"}


def voidrepair(req: VoidRepairRequest, monitor: Optional[Monitor] = None) -> VoidRepairResult:
    monitor = monitor or Monitor()
    started = time.perf_counter()
    check_distinct_paths({"INPUT": req.input_path, "TARGET_GRID": req.target_grid_path,
                          "SPECTRAL": req.spectral_path, "MODEL": req.model_path,
                          "AUXILIARY": req.auxiliary_path},
                         {"OUTPUT": req.output_path, "FILLED_MASK": req.mask_path})
    if not (math.isfinite(req.max_void_size) and req.max_void_size >= 0):
        raise DemSrError(f"MAX_VOID_SIZE must be a number of input pixels ≥ 0 (0 = fill every "
                         f"void), not {req.max_void_size}.")
    src = open_dem(req.input_path, req.band)
    if min(src.grid.width, src.grid.height) < 3:
        raise DemSrError(f"'{os.path.basename(req.input_path)}' is {src.grid.width}×"
                         f"{src.grid.height} cells: a void needs data around it, so void repair "
                         "needs a DEM at least 3 cells wide and high.")
    check_output_path(req.output_path, monitor.info)
    check_output_path(req.mask_path, monitor.info)
    if req.target_grid_path and req.target_resolution:
        monitor.warning("Both TARGET_GRID and TARGET_RESOLUTION are set: TARGET_GRID wins.")
    reference = open_dem(req.target_grid_path, 1).grid if req.target_grid_path else None
    dst = target_grid(src.grid, reference, req.target_resolution)
    if not _overlaps(src.grid, dst):
        raise DemSrError("The target grid does not overlap the input DEM (after reprojection "
                         "to its CRS): choose a target grid that covers the DEM.")
    aux = open_auxiliary(req.auxiliary_path, src.grid) if req.auxiliary_path else None
    method, why = choose_method(req, aux is not None)
    monitor.info(f"Method: {METHOD_NAMES[method]} (METHOD={req.method or 'auto'}"
                 + (f": {why}" if why != "as chosen" else "") + ").")
    if method == "fill" and aux is not None:
        monitor.warning("METHOD=fill does not read AUXILIARY: use METHOD=delta or auto to fill "
                        "voids from it.")
    if method == "fill" and req.model_path:
        monitor.warning(f"METHOD={method} does not use MODEL.")
    profiles = _profiles(req, src, dst)
    if method == "model" and not same_grid(src.grid, dst):
        loaded = load_model(req.model_path, aux is not None, req.device)
        if grid_change_model(*loaded, src.grid, dst, monitor):
            return _repair_model(req, src, dst, aux, profiles, monitor, started, loaded)
    if superresolve_route(src.grid, dst):
        require_room(profiles, "OUTPUT and FILLED_MASK")
        return _repair_then_superresolve(req, src, dst, aux, method, profiles, monitor)
    if method in CLASSICAL and not same_grid(src.grid, dst):
        require_room(profiles, "OUTPUT and FILLED_MASK")
        return _repair_then_warp(req, src, dst, aux, method, profiles, monitor)
    return _repair_here(req, src, dst, aux, method, monitor, started)


def _profiles(req: VoidRepairRequest, src, dst: Grid) -> list:
    """OUTPUT's and FILLED_MASK's GeoTIFF profiles on dst."""
    return [(req.output_path, gtiff_profile(dst, output_nodata(src.nodata))),
            (req.mask_path, gtiff_profile(dst, MASK_NODATA, dtype="uint8"))]


def _repair_here(req: VoidRepairRequest, src, dst: Grid, aux, method: str,
                 monitor: Monitor, started: float) -> VoidRepairResult:
    """The repair onto dst by `method` (classical methods: dst is the input grid)."""
    profiles = _profiles(req, src, dst)
    if method in CLASSICAL:
        return _repair_classical(req, src, aux if method == "delta" else None, profiles,
                                 monitor, started)
    return _repair_model(req, src, dst, aux, profiles, monitor, started)


def _repair_classical(req: VoidRepairRequest, src, aux, profiles: list, monitor: Monitor,
                      started: float) -> VoidRepairResult:
    """METHOD=fill or delta on the input grid, streamed (voidfill)."""
    from .voidfill import repair_classical

    g = src.grid
    pixels = g.width * g.height
    if pixels > MAX_STREAM_PIXELS:
        raise DemSrError(
            f"The DEM has {g.width}×{g.height} pixels, more than the "
            f"{MAX_STREAM_PIXELS // 1_000_000} million that void repair indexes. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip).")
    require_room(profiles, "OUTPUT and FILLED_MASK")
    need = CLASSICAL_BYTES_PER_PIXEL * pixels + CLASSICAL_FIXED_BYTES
    free = available_bytes()
    if free is not None and need > free:
        raise DemSrError(
            f"Void repair of a {g.width}×{g.height} DEM holds its void masks in memory and "
            f"needs about {gigabytes(need)}; {gigabytes(free)} is available. Close other "
            "programs or split the DEM into parts (Raster ▸ Extraction ▸ Clip).")
    with atomic_outputs(profiles, monitor.info) as writers:
        r = repair_classical(src, aux, req.max_void_size, writers, monitor.sub(0.0, 0.99))
        monitor.check()
    monitor.info(f"Input {g.width}×{g.height} px: {r.voids} void(s), {r.filled} cells filled"
                 + (f"; {r.left_voids} void(s) wider than {req.max_void_size:g} px left as "
                    "nodata" if r.left_voids else "")
                 + (f"; {r.outside} nodata cells touch the raster border: outside the DEM's "
                    "footprint, not voids, kept as nodata" if r.outside else "") + ".")
    if aux is not None:
        _auxiliary_warnings(r.uncovered, r.filled, r.rim_warning, monitor)
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    detail = (f"{r.filled} filled pixels, {r.from_auxiliary} from the auxiliary DEM"
              if aux is not None else f"{r.filled} filled pixels")
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({detail}) in {seconds:.1f} s.")
    method = "delta" if aux is not None else "fill"
    return VoidRepairResult(req.output_path, req.mask_path, src.grid, r.voids, r.filled, r.left,
                            "cpu", seconds, method, r.from_auxiliary)


def _auxiliary_warnings(uncovered: int, filled: int, rim_warning: Optional[str],
                        monitor: Monitor) -> None:
    if uncovered:
        monitor.warning(
            f"AUXILIARY does not cover {uncovered} of the {filled} void cells "
            f"({100 * uncovered / max(filled, 1):.3g} %): they were filled by the first "
            f"fill and are marked {MASK_FILLED} in FILLED_MASK ({MASK_AUXILIARY} = from the "
            "auxiliary DEM).")
    if rim_warning:
        monitor.warning(rim_warning)


def _repair_model(req: VoidRepairRequest, src, dst: Grid, aux, profiles: list,
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
    pixels = dst.width * dst.height
    limit = MAX_STREAM_PIXELS if stream else MAX_TARGET_PIXELS
    if pixels > limit:
        held = "routes flow over" if stream else "holds in memory"
        raise DemSrError(
            f"The target grid has {dst.width}×{dst.height} pixels, more than the "
            f"{limit // 1_000_000} million that void repair {held}. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip) or choose a coarser target.")
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
        _auxiliary_warnings(filled - int((prep.from_auxiliary & fill_t).sum()), filled,
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
        with atomic_outputs(profiles, monitor.info) as writers:
            vs.write_streamed(src, gp, batch_infer(model, choice.device), halo, req.batch_size,
                              writers, MASK_NODATA, monitor.sub(0.4, 0.99),
                              os.path.basename(model_path))
            monitor.check()
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({gp.filled} filled pixels) in "
                 f"{seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, src.grid, gp.voids, gp.filled,
                            gp.left, choice.description, seconds, "model")
