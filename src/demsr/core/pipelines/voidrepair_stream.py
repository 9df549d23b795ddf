"""Void repair on the input's own grid, streamed: the same values as in memory.

Two phases.

1. Global, on the whole input grid (what needs the whole raster): void classes
   (nodata touching the border is outside the footprint), the biharmonic first
   fill of each void group, flow accumulation (D8 routing is global: a cell's
   value depends on its whole catchment), the scaling constants (curvature
   statistics by row blocks, core.terrain.streamfit; flow by its min/max), the
   relief constant (by row blocks with a 6-row halo), the voids' distance map,
   the nearest-value extension beyond the footprint and the network windows:
   the bounding box of the voids in each tile holding some (tiles.sparse_windows),
   so the network runs on void cells plus its halo, not on whole tiles. Flow
   routing, the longest step, runs in a second thread (core.background) while
   the rest of this phase runs beside it. Four rasters of the input grid
   (first-filled DEM, flow accumulation, void distance, classes) go to a
   temporary GeoTIFF beside the output; every array of the whole grid is freed
   before phase 2. Peak memory is this phase's: flow routing and, beside it, the
   curvatures kept for their percentile, about 45 bytes per pixel of NumPy arrays
   plus 60 MB measured on 4–16 Mpx of real terrain (GLOBAL_BYTES_PER_PIXEL;
   tests/core/pipelines/test_voidrepair_stream.py).
2. Streamed, in blocks of lcm(network tile, 256) pixels (aligned with the
   output's GeoTIFF blocks and the network tiles, each written once): the input
   block is copied; for each void box, a window with the network's halo plus
   one pixel for the 3×3 derivatives is read back from the temporary
   GeoTIFF, slope and curvatures are computed there, everything is scaled with
   the global constants, DS-HAT runs, and only void cells take its values. Memory
   here is one block plus one batch of tiles, whatever the raster's size.

Every window value equals the whole-raster value (the derivatives' halo is
read, the global fields are read back), so the result equals the in-memory
pipeline (dshat_inputs.prepare + voidrepair_model.run_model) up to float rounding
in the network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from ..background import beside
from ..monitor import Monitor
from ..nets.output_check import check_output_tile
from ..nodata.fill import fill_nearest
from ..nodata.find import FILLED, LEFT, NODATA, VALID, classify_voids, require_valid, warn_sentinels
from ..nodata.inpaint import inpaint
from ..raster.grid import Grid
from ..raster.io import GDAL_ENV, DemSource, read_band
from ..raster.write import RasterWriter, scratch_path
from ..raster.space import check_space, raster_bytes
from ..raster.tiles import sparse_windows
from ..terrain import DEFAULT_STREAM_THRESHOLD, DSHAT_DERIVATIVES, NormaliserSet
from ..terrain.cellsize import CellSizes, cell_sizes
from ..terrain.flow import flow_accumulation, streams
from ..terrain.streamfit import StreamedFit
from ..terrain.surface import CURVATURES, surface_derivatives

SCRATCH_BANDS = ("dem", "flow_accumulation", "voids", "classes")
BLOCK_PIXELS = 1 << 18      # rows per block of the global passes: about this many cells
GTIFF_BLOCK = 256
# Bound on the growth of the global pass's NumPy peak per input pixel: flow routing's and,
# beside it, the other global arrays' (tracemalloc, real terrain, 1 % voids: 74 between
# 384² and 768² mosaics of the 10 m Sagehen DEM (the test), where flow routing's batched
# temporaries still grow with the flat cells; from 2000² to 4000² SRTM and lidar mosaics
# 45 per pixel over a fixed 60 MB, i.e. 60 and 49 in all). voidrepair.STREAM_* budget the
# whole process.
GLOBAL_BYTES_PER_PIXEL = 100


@dataclass
class GlobalPass:
    """What phase 2 needs: constants, the tile plan and the temporary rasters' path."""

    scratch: str
    norms: NormaliserSet
    sigma: float
    tiles: list            # (row0, col0, height, width): each void-holding tile's void box
    tile_side: int         # the tile side sparse_windows chose (boxes lie in its tiles)
    voids: int             # void groups to fill
    left_voids: int        # void groups left as nodata (max_void_size)
    filled: int            # cells to fill
    left: int              # cells left as nodata (max_void_size)


def _blocks(height: int, width: int):
    step = max(1, BLOCK_PIXELS // max(width, 1))
    for r0 in range(0, height, step):
        yield r0, min(r0 + step, height)


def _rows(sizes: CellSizes, r0: int, r1: int) -> CellSizes:
    return CellSizes(dx=sizes.dx[r0:r1], dy=sizes.dy[r0:r1])


def _curvatures(surface: np.ndarray, sizes: CellSizes, r0: int, r1: int) -> dict:
    """Curvatures of rows r0..r1 of the whole surface, from rows r0-1..r1+1 (exact)."""
    a, b = max(r0 - 1, 0), min(r1 + 1, surface.shape[0])
    der = surface_derivatives(surface[a:b], _rows(sizes, a, b), set(CURVATURES))
    return {k: v[r0 - a:r0 - a + r1 - r0] for k, v in der.items()}


def _relief_sum(dem_in: np.ndarray, valid: np.ndarray, r0: int, r1: int,
                radius: int) -> tuple[float, int]:
    """Sum and count of the local mean absolute deviation over valid cells of rows r0..r1
    (core.nets.local_norm.relief_constant, by blocks)."""
    from ..nets.local_norm import local_stats

    a, b = max(r0 - 2 * radius, 0), min(r1 + 2 * radius, dem_in.shape[0])
    z = np.ascontiguousarray(dem_in[a:b], dtype=np.float64)[None, None]
    dev = local_stats(z, radius, 0.0)[1][0, 0][r0 - a:r0 - a + r1 - r0]
    vals = dev[valid[r0:r1] & np.isfinite(dev)]
    return float(vals.sum()), int(vals.size)


def void_distance(fill: np.ndarray) -> np.ndarray:
    """ndimage.distance_transform_edt(fill) as float32, one void group at a time.

    The nearest non-void cell of a cell of group A is within min(h, w) of it (along its
    row or column the first cell outside A is 4-adjacent to A, so not a void cell), so
    A's box grown by min(h, w) + 1 holds it: the same values, with memory for the largest
    void's window instead of 25 bytes per pixel of the whole grid.
    """
    dist = np.zeros(fill.shape, np.float32)
    labels, _ = ndimage.label(fill)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        d = min(box[0].stop - box[0].start, box[1].stop - box[1].start) + 1
        win = tuple(slice(max(b.start - d, 0), min(b.stop + d, n))
                    for b, n in zip(box, fill.shape))
        inside = labels[win] == i
        dist[win][inside] = ndimage.distance_transform_edt(fill[win])[inside]
    return dist


def global_pass(src: DemSource, max_void_size: float, halo: int, tile_size: int,
                min_tile: int, sigma_radius: int, scratch: str,
                monitor: Monitor) -> GlobalPass:
    """Phase 1 (see the module docstring); writes the temporary rasters to `scratch`."""
    grid = src.grid
    H, W = grid.height, grid.width
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        dem = read_band(ds, src.band)
    require_valid(int(np.isfinite(dem).sum()), src.path, src.band)
    warn_sentinels(dem, src, monitor)
    monitor.check()
    classes, n_fill, n_left = classify_voids(dem, max_void_size)
    fill = classes == FILLED
    surface = inpaint(dem, fill, monitor.sub(0.0, 0.15))  # NaN on NODATA and LEFT
    del dem
    n_filled = int(fill.sum())
    n_left_px = int((classes == LEFT).sum())
    del fill
    monitor.check()
    # Flow routing, the longest step, runs in a second thread beside everything else
    # here, which is array work too (curvature and relief statistics, the void distance
    # map, the temporary rasters); its result is the last thing written, and its progress
    # is this pass's.
    sizes = cell_sizes(grid)
    route = partial(flow_accumulation, surface, sizes)
    fit = StreamedFit(DSHAT_DERIVATIVES)
    profile = dict(driver="GTiff", width=W, height=H, count=len(SCRATCH_BANDS),
                   dtype="float32", crs=grid.crs, transform=grid.transform, nodata=None,
                   tiled=True, blockxsize=GTIFF_BLOCK, blockysize=GTIFF_BLOCK,
                   interleave="band", BIGTIFF="IF_SAFER")
    check_space([(scratch, raster_bytes(W, H, len(SCRATCH_BANDS)))],
                "temporary rasters of the input grid, beside the output")
    band = {name: i + 1 for i, name in enumerate(SCRATCH_BANDS)}
    with beside(route, monitor, monitor.sub(0.15, 0.95).progress) as routed, \
            rasterio.Env(**GDAL_ENV), \
            rasterio.open(scratch, "w", **profile) as out:
        writer = RasterWriter(out, 0.0, scratch)
        # The exact 95th percentile needs two passes over the curvatures; they are kept
        # from the first (12 bytes per pixel).
        curv = []
        for r0, r1 in _blocks(H, W):
            monitor.check()
            routed.report()
            curv.append(_curvatures(surface, sizes, r0, r1))
            for name, values in curv[-1].items():
                fit.add(name, values)
        if fit.second_pass():
            for block in curv:
                for name, values in block.items():
                    fit.add2(name, values)
        del curv
        dem_in = fill_nearest(surface)  # beyond the footprint: the nearest value
        del surface
        valid = classes == VALID
        total, count = 0.0, 0
        for r0, r1 in _blocks(H, W):
            monitor.check()
            routed.report()
            s, n = _relief_sum(dem_in, valid, r0, r1, sigma_radius)
            total, count = total + s, count + n
            writer.write_raw(dem_in[r0:r1].astype(np.float32, copy=False), r0, 0, band["dem"])
        del dem_in, valid
        sigma = max(total / count, 1e-3) if count else 1.0
        fill = classes == FILLED
        dist = void_distance(fill)
        for r0, r1 in _blocks(H, W):
            writer.write_raw(dist[r0:r1].astype(np.float32), r0, 0, band["voids"])
            writer.write_raw(classes[r0:r1].astype(np.float32), r0, 0, band["classes"])
        del dist
        acc = routed.result()
        for r0, r1 in _blocks(H, W):
            fit.add("flow_accumulation", acc[r0:r1])
            writer.write_raw(acc[r0:r1], r0, 0, band["flow_accumulation"])
        del acc
    side, tiles = sparse_windows(fill, tile_size, halo, min_tile) if n_filled else (tile_size, [])
    monitor.progress(1.0)
    return GlobalPass(scratch, fit.result(), sigma, tiles, side, n_fill, n_left, n_filled,
                      n_left_px)


def _read(ds, band: int, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    return ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))


def tile_inputs(ds, gp: GlobalPass, sizes: CellSizes, grid: Grid, r0: int, c0: int,
                hs: int, ws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dem, voids, aux) of the network window rows r0..r0+hs, cols c0..c0+ws (may reach
    beyond the raster: edge cells repeated, as voidrepair_model.run_model's window())."""
    H, W = grid.height, grid.width
    a0, b0 = max(r0, 0), max(c0, 0)                 # the window inside the raster
    a1, b1 = min(r0 + hs, H), min(c0 + ws, W)
    e0, f0, e1, f1 = max(a0 - 1, 0), max(b0 - 1, 0), min(a1 + 1, H), min(b1 + 1, W)
    # one read of all the bands (the derivatives' window holds the network's)
    bands = dict(zip(SCRATCH_BANDS, ds.read(window=Window(f0, e0, f1 - f0, e1 - e0))))
    dem, classes = bands["dem"], bands["classes"]
    surface = np.where(classes < NODATA, dem, np.float32(np.nan)).astype(np.float32)
    der = surface_derivatives(surface, _rows(sizes, e0, e1),
                              {"slope"} | set(CURVATURES))
    inner = (slice(a0 - e0, a1 - e0), slice(b0 - f0, b1 - f0))
    acc = bands["flow_accumulation"][inner]
    der = {name: der[name][inner] for name in DSHAT_DERIVATIVES if name in der}
    der["flow_accumulation"] = acc
    der["streams"] = streams(acc, DEFAULT_STREAM_THRESHOLD)
    ordered = {name: der[name] for name in DSHAT_DERIVATIVES}
    aux = np.stack(list(gp.norms.apply(ordered).values())).astype(np.float32, copy=False)
    np.nan_to_num(aux, copy=False, nan=0.0)
    voids = bands["voids"][inner]
    pads = ((a0 - r0, r0 + hs - a1), (b0 - c0, c0 + ws - b1))

    def pad(x):
        if not any(p != (0, 0) for p in pads):
            return x
        return np.pad(x, ((0, 0),) * (x.ndim - 2) + pads, mode="edge")

    return pad(dem[inner]), pad(voids), pad(aux)


def write_streamed(src: DemSource, gp: GlobalPass, infer: Callable, halo: int,
                   batch_size: int, writers: tuple[RasterWriter, RasterWriter],
                   mask_nodata: int, monitor: Monitor, model_name: str = "DS-HAT") -> None:
    """Phase 2: the input copied block by block, tiles holding voids repaired by `infer`
    (batch of (dem, voids, aux) windows → predictions, each checked by
    core.nets.output_check), written to the two outputs."""
    grid = src.grid
    H, W = grid.height, grid.width
    block = math.lcm(gp.tile_side, GTIFF_BLOCK)
    sizes = cell_sizes(grid)
    by_block: dict = {}
    for t in gp.tiles:
        by_block.setdefault((t[0] // block, t[1] // block), []).append(t)
    band = {name: i + 1 for i, name in enumerate(SCRATCH_BANDS)}
    starts = [(r, c) for r in range(0, H, block) for c in range(0, W, block)]
    out_w, mask_w = writers
    done = 0
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds, \
            rasterio.open(gp.scratch) as scratch:
        for k, (R, C) in enumerate(starts):
            monitor.check()
            R1, C1 = min(R + block, H), min(C + block, W)
            out = read_band(ds, src.band, Window(C, R, C1 - C, R1 - R))
            classes = _read(scratch, band["classes"], R, C, R1, C1)
            tiles = by_block.get((R // block, C // block), [])
            for i in range(0, len(tiles), max(1, batch_size)):
                monitor.check()
                batch = tiles[i:i + batch_size]
                hs = max(t[2] for t in batch) + 2 * halo
                ws = max(t[3] for t in batch) + 2 * halo
                inputs = [tile_inputs(scratch, gp, sizes, grid, t[0] - halo, t[1] - halo, hs, ws)
                          for t in batch]
                y = infer(np.stack([x[0] for x in inputs])[:, None],
                          np.stack([x[1] for x in inputs])[:, None],
                          np.stack([x[2] for x in inputs]), gp.sigma)
                for j, (r, c, h, w) in enumerate(batch):
                    check_output_tile(y[j, 0], inputs[j][0], model_name,
                                      f"rows {r}–{r + h - 1}, columns {c}–{c + w - 1}")
                    core = (slice(r - R, r - R + h), slice(c - C, c - C + w))
                    hit = classes[core] == FILLED
                    out[core][hit] = y[j, 0, halo:halo + h, halo:halo + w][hit]
                done += len(batch)
                monitor.progress(0.1 + 0.9 * done / max(len(gp.tiles), 1))
            out[classes >= NODATA] = np.nan
            mask = np.where(classes >= NODATA, mask_nodata, classes == FILLED).astype(np.uint8)
            out_w.write(out, R, C)
            mask_w.write_raw(mask, R, C)
            if not gp.tiles:
                monitor.progress((k + 1) / len(starts))


def scratch_for(output_path: str):
    """The temporary rasters' path beside the output (removed on exit)."""
    return scratch_path(output_path + ".inputs")
