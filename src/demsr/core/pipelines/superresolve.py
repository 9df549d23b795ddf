"""Streaming super-resolution of a DEM of any size.

Reads input windows with a halo, runs them in batches through an upsampler,
masks output cells whose centre falls on input nodata, and writes each tile
as it finishes into a partial GeoTIFF that replaces the output only on
success. Peak memory depends on the tile and batch size, not on the raster.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import rasterio

from ..background import Lanes
from ..errors import DemSrError
from ..raster.grid import Grid, output_grid, source_index
from ..monitor import Monitor
from ..paths import check_distinct_paths
from ..raster.io import GDAL_ENV, DemSource, open_dem, read_window
from ..raster.write import atomic_outputs, check_output_path, gtiff_profile, output_nodata
from ..raster.space import check_output_size, require_room
from ..raster.warp import CLASSICAL_METHODS
from ..raster.tiles import Tile, batches, plan_tiles
from .upsamplers import ClassicalUpsampler, TileInput, Upsampler
from ..nodata.fill import fill_nearest, filled_source

MODEL_METHOD = "model"
METHODS = (MODEL_METHOD, *CLASSICAL_METHODS)
MIN_TILE, MAX_TILE = 64, 8192


@dataclass
class SuperResolveRequest:
    input_path: str
    output_path: str
    band: int = 1
    scale: Optional[float] = 2.0
    target_resolution: Optional[float] = None  # CRS units; overrides scale when > 0
    method: str = "lanczos"                    # "model" or a classical method
    model_path: Optional[str] = None           # checkpoint; None = bundled default
    device: str = "auto"
    tile_size: int = 1024                      # output pixels per tile side
    overlap: int = 0                           # extra input pixels of context per side
    batch_size: int = 1                        # one 1024² tile is enough work for a GPU
    grid: Optional[Grid] = None                # exact output grid (same CRS); overrides both
    # (row0, col0, height, width) of the output grid: compute and write only this window
    # (a file on the window's grid), e.g. one tile of a mosaic split over workers (mosaic/tile.py)
    window: Optional[tuple[int, int, int, int]] = None
    # METHOD=model: also write each output pixel's expected error (1σ, metres) here
    # (core/uncertainty/estimate.py); written together with OUTPUT, or neither
    uncertainty_path: Optional[str] = None


@dataclass
class SuperResolveResult:
    output_path: str
    grid: Grid
    method: str
    device: str
    tiles: int
    seconds: float
    uncertainty_path: Optional[str] = None
    uncertainty_seconds: float = 0.0           # of `seconds`, spent on UNCERTAINTY


def build_upsampler(req: SuperResolveRequest, src: DemSource, dst: Grid,
                    monitor: Monitor) -> Upsampler:
    if req.method in CLASSICAL_METHODS:
        return ClassicalUpsampler(req.method, src.grid, dst)
    if req.method == MODEL_METHOD:
        from .blend import model_upsampler

        return model_upsampler(req.model_path, src.grid, dst, req.device, req.batch_size,
                               monitor)
    raise DemSrError(f"Unknown method '{req.method}'. Use one of: {', '.join(METHODS)}.")


def _check_request(req: SuperResolveRequest) -> None:
    if not MIN_TILE <= req.tile_size <= MAX_TILE:
        raise DemSrError(f"Tile size {req.tile_size} is outside {MIN_TILE}–{MAX_TILE} pixels.")
    if req.batch_size < 1:
        raise DemSrError("Batch size must be at least 1.")
    if req.overlap < 0:
        raise DemSrError("Overlap cannot be negative.")
    if req.uncertainty_path and req.method != MODEL_METHOD:
        raise DemSrError(f"UNCERTAINTY is estimated for METHOD=model only (it is calibrated on "
                         f"the models' errors), not for '{req.method}'. Set METHOD to 'model', "
                         "or leave UNCERTAINTY out.")


def plan_window(src: Grid, dst: Grid, tile_size: int, halo: int,
                window: Optional[tuple[int, int, int, int]]) -> tuple[Grid, list[Tile]]:
    """The grid the output file has (dst, or the window of it) and the tiles that cover it,
    in dst's pixel coordinates: the pixels of a window are computed as in the whole grid."""
    if window is None:
        return dst, plan_tiles(src, dst, tile_size, halo)
    r0, c0, h, w = (int(v) for v in window)
    if h < 1 or w < 1 or r0 < 0 or c0 < 0 or r0 + h > dst.height or c0 + w > dst.width:
        raise DemSrError(f"The output window {tuple(window)} is not inside the "
                         f"{dst.width}×{dst.height} output grid.")
    sub = Grid(dst.window_transform(r0, c0), w, h, dst.crs)
    return sub, [replace(t, row0=t.row0 + r0, col0=t.col0 + c0)
                 for t in plan_tiles(src, sub, tile_size, halo)]


def output_valid(mask_ds, src: DemSource, dst: Grid, tile: Tile, has_voids: bool) -> np.ndarray:
    """Output cells whose centre lies on a valid input cell (nearest-neighbour mask).

    Without voids only cells beyond the input's extent can be invalid, and the
    input need not be read again.
    """
    rows = np.arange(tile.row0, tile.row0 + tile.height)
    cols = np.arange(tile.col0, tile.col0 + tile.width)
    r, _ = source_index(src.grid, dst, rows, np.zeros_like(rows))
    _, c = source_index(src.grid, dst, np.zeros_like(cols), cols)
    if not has_voids:
        return (((r >= 0) & (r < src.grid.height))[:, None]
                & ((c >= 0) & (c < src.grid.width))[None, :])
    r0, c0 = int(r.min()), int(c.min())
    window = read_window(mask_ds, src.band, r0, c0, int(r.max()) - r0 + 1, int(c.max()) - c0 + 1)
    return ~np.isnan(window[np.ix_(r - r0, c - c0)])


def _trimmed(inp: TileInput, k: int) -> TileInput:
    """The window k cells narrower on every side: what a method with a k-cell smaller
    halo reads, so its output does not change when another step needs a wider window."""
    if k == 0:
        return inp
    return TileInput(inp.data[k:-k, k:-k], inp.row0 + k, inp.col0 + k)


def _uncertainty(req: SuperResolveRequest, src: Grid, dst: Grid, monitor: Monitor):
    """The UNCERTAINTY estimator, or None when it is not asked for."""
    if not req.uncertainty_path:
        return None
    from ..uncertainty.estimate import UncertaintyEstimator

    est = UncertaintyEstimator(src, dst)
    if req.model_path:
        monitor.info("Note: UNCERTAINTY is calibrated on the bundled models' errors; for "
                     "another checkpoint check it with Evaluate DEM (UNCERTAINTY input) on an "
                     "area where you have a reference.")
    return est


def _read_input(ds, band: int, tile: Tile) -> TileInput:
    """The tile's input window; beyond the raster the edge cells are repeated.

    Every tile, the single tile of an untiled run included, sees the same
    padded surface, so no method's own edge handling can make tiles disagree.
    """
    data = read_window(ds, band, tile.src_row0, tile.src_col0, tile.src_height,
                       tile.src_width, pad_edge=True)
    return TileInput(data, tile.src_row0, tile.src_col0)


def superresolve(req: SuperResolveRequest, monitor: Optional[Monitor] = None) -> SuperResolveResult:
    monitor = monitor or Monitor()
    started = time.perf_counter()
    _check_request(req)
    check_distinct_paths({"INPUT": req.input_path, "MODEL": req.model_path},
                         {"OUTPUT": req.output_path, "UNCERTAINTY": req.uncertainty_path})
    src = open_dem(req.input_path, req.band)
    check_output_path(req.output_path, monitor.info)
    if req.uncertainty_path:
        check_output_path(req.uncertainty_path, monitor.info)
    dst = req.grid or output_grid(src.grid, req.scale, req.target_resolution)
    if req.window is None:  # before the model is loaded and the tiles are planned
        check_output_size(dst, "OUTPUT")
    upsampler = build_upsampler(req, src, dst, monitor)
    estimator = _uncertainty(req, src.grid, dst, monitor)
    # one window per tile serves both; the model reads it trimmed to its own halo
    halo = max(upsampler.halo, estimator.halo if estimator else 0)
    trim = halo - upsampler.halo
    out_grid, tiles = plan_window(src.grid, dst, req.tile_size, halo + req.overlap, req.window)
    lanes = max(1, min(upsampler.lanes, -(-len(tiles) // upsampler.batch_size)))
    upsampler.use_lanes(lanes)
    r_off, c_off = (req.window or (0, 0))[:2]
    nodata = output_nodata(src.nodata)
    profile = gtiff_profile(out_grid, nodata)
    outputs = [(req.output_path, profile)]
    if estimator:
        outputs.append((req.uncertainty_path, profile))
    require_room(outputs, "OUTPUT" + (" and UNCERTAINTY" if estimator else ""))
    rx, ry = dst.res
    monitor.info(f"Input {src.grid.width}×{src.grid.height} px; output {out_grid.width}×"
                 f"{out_grid.height} "
                 f"px of {rx:.6g}×{ry:.6g} CRS units; {upsampler.name}; {len(tiles)} tiles "
                 f"of ≤{req.tile_size} px with {halo + req.overlap} px halo"
                 + (f", {lanes} at a time" if lanes > 1 else "") + "; "
                 f"nodata {nodata:g}." + (" UNCERTAINTY: 1σ of each pixel's expected error "
                                          "(metres)." if estimator else ""))
    with filled_source(src, req.output_path, monitor.sub(0.0, 0.1)) as filled, \
            atomic_outputs(outputs, monitor.info) as writers, \
            rasterio.Env(**GDAL_ENV), rasterio.open(filled.path) as fill_ds, \
            rasterio.open(src.path) as mask_ds:
        has_voids = filled.path != src.path  # filled_source yields src itself when void-free

        tile_monitor = monitor.sub(0.1, 1.0)
        written, spent = [0], [0.0]

        def write(batch: list[Tile], outputs: list) -> None:
            for tile, layers in zip(batch, outputs):
                valid = None
                for writer, out in zip(writers, layers or [None] * len(writers)):
                    if out is None:  # only nodata around this tile: nothing was computed
                        out = np.full((tile.height, tile.width), np.nan, np.float32)
                    else:
                        if valid is None:
                            valid = output_valid(mask_ds, src, dst, tile, has_voids)
                        if not valid.all():
                            out = np.where(valid, out, np.nan)
                    writer.write(out, tile.row0 - r_off, tile.col0 - c_off)
            written[0] += len(batch)
            tile_monitor.progress(written[0] / len(tiles))

        def compute(batch: list[Tile], inputs: list[Optional[TileInput]]) -> list:
            """Per tile: None (nothing to compute) or [model output(, σ)]."""
            kept = [k for k, inp in enumerate(inputs) if inp is not None]
            outputs: list = [None] * len(batch)
            if kept:
                given = [inputs[k] for k in kept]
                tiles_kept = [batch[k] for k in kept]
                done = upsampler.upsample([_trimmed(i, trim) for i in given], tiles_kept)
                layers = [done]
                if estimator:
                    t0 = time.perf_counter()
                    layers.append(estimator.estimate(given, tiles_kept, done))
                    spent[0] += time.perf_counter() - t0
                for j, k in enumerate(kept):
                    outputs[k] = [layer[j] for layer in layers]
            return outputs

        # Tiles are read, masked and written in order in this thread (one GDAL handle each)
        # and computed in `lanes` threads at once (Upsampler.lanes).
        with Lanes(lanes) as running:
            for batch in batches(tiles, upsampler.batch_size):
                monitor.check()
                inputs = []
                for tile in batch:
                    inp = _read_input(fill_ds, filled.band, tile)
                    data = fill_nearest(inp.data)
                    inputs.append(None if data is None else TileInput(data, inp.row0, inp.col0))
                for finished in running.submit(batch, compute, batch, inputs):
                    write(*finished)
            for finished in running.drain():
                write(*finished)
        monitor.check()
    seconds = time.perf_counter() - started
    if estimator:
        monitor.info(f"Wrote {req.output_path} and {req.uncertainty_path} in {seconds:.1f} s "
                     f"(UNCERTAINTY took {spent[0]:.1f} s of it).")
    else:
        monitor.info(f"Wrote {req.output_path} in {seconds:.1f} s.")
    return SuperResolveResult(req.output_path, out_grid, upsampler.name,
                              getattr(upsampler, "device", "cpu"), len(tiles), seconds,
                              req.uncertainty_path if estimator else None, spent[0])
