"""A coarser auxiliary DEM super-resolved by the bundled models where the voids need it
(METHOD=delta; core/nodata/auxiliary.AuxReader(superresolve=True)).

Delta fill's error in voids is mostly the detail a coarse auxiliary lacks, not its error
or shift (docs/quality.md#void-repair-with-an-auxiliary-dem-methoddelta-and-without-methodfill),
so an auxiliary ×f coarser than the DEM (f from the two cell sizes in metres,
core/terrain/cellsize) is first brought onto its own grid min(f, SR_MAX) times finer by
the route Super-resolve DEM's METHOD=model takes for that factor (core/nets/bundled.RULE
through blend.model_upsampler: up to ×2 the 16-channel models), then reprojected onto the
repair grid by GDAL Lanczos as before.

Only what the voids need is computed: the auxiliary pixels under the void groups' windows
are grouped into regions (windows closer than the network's context merge, each region at
most REGION_CELLS fine cells a side), and a region is super-resolved, with the network's
full context (its halo) read around it, the first time a window asks for it; a bounded
number of regions are kept (the void groups come in row order). The network's halo is its
receptive field, so a fine cell does not depend on the region that computed it (within
float rounding, as the engine's tiles): a window's values do not depend on how the raster
is read. Fine cells whose network input touches the auxiliary's own nodata take today's
Lanczos value instead (their inputs would otherwise depend on how far a region reaches).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from scipy import ndimage

from ..errors import DemSrError
from ..monitor import Monitor
from ..raster.grid import Grid, source_index
from ..raster.io import read_window
from ..raster.warp import LOCAL_CRS, reproject_exact
from ..terrain.cellsize import cell_size_m
from .upsamplers import TileInput

# Factors at which the bundled models bring the auxiliary closer to the truth in voids than
# Lanczos on every validation DEM (scripts/evaluate_voids.py --aux-factors, docs/quality.md):
# from ×1.1 (0.94× Lanczos, geometric mean) up to ×7 (0.94×, worst DEM 0.97×, 5 seeds); at
# ×7.5 one DEM was 1.005× as shipped and at ×8 1.055× (the gentle 5 m DEM), so Lanczos stays
# above ×7.
MIN_FACTOR, MAX_FACTOR = 1.1, 7.0
# The models take the auxiliary at most ×2 finer (the bundled ×2 model, 16 channels), GDAL
# Lanczos the rest of the way. Measured (same script, docs/quality.md): against Super-resolve
# DEM's route for the whole factor (×3/×4 models of 48 channels, blends at ×2–3) delta's
# RMSE in voids over Lanczos' is 0.904 instead of 0.887 at ×4 (0.913 / 0.905 at ×3, 0.937 /
# 0.933 at ×6, 0.970 / 0.968 at ×8), while METHOD=delta at 1 % voids (2000², ×4
# auxiliary) spends about 0.45 s more than with Lanczos alone instead of 1.4 s (the network
# 0.12 s instead of about 1 s): 1.8–1.9× gdal:fillnodata instead of 2.3–2.4×, target ≤ 2×
# (docs/benchmarks.md). The ×2 model chained twice at ×4: 0.907, and 1.0 s more.
SR_MAX = 2.0
SNAP = 0.02              # a factor within 2 % of an integer is that integer (exact models)
REGION_CELLS = 1024      # fine cells a side at most per network call (the engine's tile)
CACHE_CELLS = 24 << 20   # fine cells kept at most (about 100 MB of float32)
BLOCK = 8                # auxiliary pixels per cell of the merging plan
LANES = 2                # regions computed at once


@dataclass(frozen=True)
class Plan:
    """How the auxiliary reaches the repair grid: factor (how many times coarser, in metres)
    and, when the models run, the factor they run at."""
    factor: float
    sr_factor: Optional[float]
    why: str


def coarser_factor(aux: Grid, grid: Grid) -> float:
    """How many times coarser the auxiliary's cells are than the repair grid's, in metres:
    the geometric mean over x and y, at the centre of the repair grid."""
    lat_aux = lat_dem = 0.0
    left, bottom, right, top = grid.bounds
    if grid.is_geographic:
        lat_dem = (bottom + top) / 2
    if aux.is_geographic:
        if grid.crs is not None and grid.crs != aux.crs:
            _, b, _, t = transform_bounds(grid.crs, aux.crs, left, bottom, right, top,
                                          densify_pts=21)
            lat_aux = (b + t) / 2
        else:
            lat_aux = (bottom + top) / 2
    ax, ay = cell_size_m(aux.res, aux.is_geographic, lat_aux)
    dx, dy = cell_size_m(grid.res, grid.is_geographic, lat_dem)
    return math.sqrt((ax * ay) / (dx * dy))


def plan(aux: Grid, grid: Grid) -> Plan:
    """Whether the bundled models take the auxiliary onto a finer grid first, and why."""
    f = coarser_factor(aux, grid)
    if f < MIN_FACTOR * (1 - SNAP):
        return Plan(f, None, f"below ×{MIN_FACTOR:g} the bundled super-resolution models "
                             "measured no better than Lanczos")
    if f > MAX_FACTOR * (1 + SNAP):
        return Plan(f, None, f"above ×{MAX_FACTOR:g} the bundled super-resolution models "
                             "measured no better than Lanczos")
    return Plan(f, run_factor(f), "")


def run_factor(f: float) -> float:
    """The factor the models run at for an auxiliary ×f coarser: f within [MIN_FACTOR,
    SR_MAX] (an integer when within SNAP of one), SR_MAX above."""
    sr = min(max(f, MIN_FACTOR), SR_MAX)
    if abs(sr - round(sr)) <= SNAP * sr:
        sr = float(round(sr))
    return sr


def sr_grid(aux: Grid, f: float) -> Grid:
    """The auxiliary's grid with cells f times smaller, anchored at its top-left corner (the
    auxiliary subdivided f×f when f is an integer)."""
    return Grid(aux.transform * Affine.scale(1.0 / f), math.ceil(aux.width * f - 1e-9),
                math.ceil(aux.height * f - 1e-9), aux.crs)


def _fine_range(lo: int, hi: int, f: float, n: int) -> tuple[int, int]:
    """The fine cells whose centres lie in auxiliary pixels [lo, hi)."""
    return (min(max(math.ceil(lo * f - 0.5 - 1e-9), 0), n),
            min(max(math.ceil(hi * f - 0.5 - 1e-9), 0), n))


class AuxSuperResolver:
    """Fine auxiliary values (on sr_grid) for windows of the repair grid, region by region.

    `aux_windows`: the auxiliary pixel windows (row0, row1, col0, col1) that will be asked
    for (the void groups' windows in the auxiliary's grid, clipped to it)."""

    def __init__(self, ds, band: int, aux: Grid, f: float, upsampler,
                 aux_windows: Iterable[tuple[int, int, int, int]]):
        self.ds, self.band, self.aux, self.f = ds, band, aux, f
        self.up = upsampler
        self.fine = sr_grid(aux, f)
        self.halo = int(upsampler.halo)
        self.regions = self._plan(list(aux_windows))
        # two regions at once on one thread each where the runtime gains from it (ONNX
        # Runtime on a CPU: core/backends.Network.lanes)
        self.lanes = min(LANES, int(upsampler.lanes)) if len(self.regions) > 1 else 1
        self.up.use_lanes(self.lanes)
        self._cache: OrderedDict = OrderedDict()
        self.computed_pixels = 0   # auxiliary pixels read by the network (with halos)
        self.head = ""             # the log line's subject (build sets it)

    def _plan(self, wins: list) -> list[tuple[int, int, int, int]]:
        """Regions (aux rows r0:r1, cols c0:c1): windows closer than the network's context
        merge (on a grid of BLOCK pixels), each region split into pieces of at most
        REGION_CELLS fine cells a side."""
        if not wins:
            return []
        h, w = -(-self.aux.height // BLOCK), -(-self.aux.width // BLOCK)
        occupied = np.zeros((h, w), bool)
        for r0, r1, c0, c1 in wins:
            occupied[r0 // BLOCK:-(-r1 // BLOCK), c0 // BLOCK:-(-c1 // BLOCK)] = True
        reach = -(-self.halo // BLOCK)
        grown = ndimage.binary_dilation(occupied, np.ones((2 * reach + 1,) * 2, bool))
        labels, n = ndimage.label(grown)
        boxes = np.zeros((n + 1, 4), np.int64)
        boxes[:, 0] = boxes[:, 2] = np.iinfo(np.int64).max
        for r0, r1, c0, c1 in wins:
            k = labels[r0 // BLOCK, c0 // BLOCK]
            b = boxes[k]
            b[:] = (min(b[0], r0), max(b[1], r1), min(b[2], c0), max(b[3], c1))
        side = max(1, int(REGION_CELLS // self.f))
        regions = []
        for r0, r1, c0, c1 in boxes[1:]:
            if r1 <= r0 or c1 <= c0:
                continue
            nr, nc = -(-(r1 - r0) // side), -(-(c1 - c0) // side)
            rs = np.linspace(r0, r1, nr + 1).round().astype(int)
            cs = np.linspace(c0, c1, nc + 1).round().astype(int)
            regions += [(int(rs[i]), int(rs[i + 1]), int(cs[j]), int(cs[j + 1]))
                        for i in range(nr) for j in range(nc)]
        return sorted(regions)

    def _inputs(self, region: tuple[int, int, int, int]) -> tuple:
        """(fine values to fill, tainted fine cells, fine row0, fine col0, [(tile, network
        input, its nodata)]) of one region: the reads (in the caller's thread)."""
        from .superresolve import plan_window

        r0, r1, c0, c1 = region
        i0, i1 = _fine_range(r0, r1, self.f, self.fine.height)
        j0, j1 = _fine_range(c0, c1, self.f, self.fine.width)
        out = np.full((i1 - i0, j1 - j0), np.nan, np.float32)
        taint = np.ones(out.shape, bool)
        items = []
        if out.size:
            _, tiles = plan_window(self.aux, self.fine, max(out.shape), self.halo,
                                   (i0, j0, i1 - i0, j1 - j0))
            for t in tiles:
                data = read_window(self.ds, self.band, t.src_row0, t.src_col0, t.src_height,
                                   t.src_width, pad_edge=True)
                nodata = np.isnan(data)
                if nodata.all():
                    continue
                if nodata.any():
                    idx = ndimage.distance_transform_edt(nodata, return_distances=False,
                                                         return_indices=True)
                    data = data[tuple(idx)]
                self.computed_pixels += data.size
                items.append((t, data, nodata))
        return out, taint, i0, j0, items

    def _network(self, item: tuple) -> np.ndarray:
        t, data, _ = item
        return self.up.upsample([TileInput(data, t.src_row0, t.src_col0)], [t])[0]

    def _finish(self, prepared: tuple, fines: list) -> tuple:
        """The region's fine values and tainted cells (fine cells whose network input
        reached the auxiliary's own nodata)."""
        out, taint, i0, j0, items = prepared
        for (t, _, nodata), fine in zip(items, fines):
            rows = slice(t.row0 - i0, t.row0 - i0 + t.height)
            cols = slice(t.col0 - j0, t.col0 - j0 + t.width)
            out[rows, cols] = fine
            near = (ndimage.maximum_filter(nodata, size=2 * self.halo + 1) if nodata.any()
                    else nodata)
            rr, _ = source_index(self.aux, self.fine, np.arange(t.row0, t.row0 + t.height),
                                 np.zeros(t.height, int))
            _, cc = source_index(self.aux, self.fine, np.zeros(t.width, int),
                                 np.arange(t.col0, t.col0 + t.width))
            taint[rows, cols] = near[np.ix_(np.clip(rr - t.src_row0, 0, near.shape[0] - 1),
                                            np.clip(cc - t.src_col0, 0, near.shape[1] - 1))]
        return out, taint, i0, j0

    def _region(self, k: int) -> tuple:
        """Region k's (fine values, tainted, fine row0, fine col0); with two lanes the next
        region not yet computed runs beside it (the windows come in row order)."""
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        ks = [k] + [j for j in range(k + 1, len(self.regions))
                    if j not in self._cache][:self.lanes - 1]
        prepared = [self._inputs(self.regions[j]) for j in ks]
        jobs = [item for p in prepared for item in p[4]]
        if len(jobs) > 1 and self.lanes > 1:
            with ThreadPoolExecutor(self.lanes, thread_name_prefix="demsr-aux") as pool:
                fines = list(pool.map(self._network, jobs))
        else:
            fines = [self._network(j) for j in jobs]
        for j, p in zip(ks, prepared):
            n = len(p[4])
            self._cache[j] = self._finish(p, fines[:n])
            fines = fines[n:]
        self._cache.move_to_end(k)
        while (sum(v[0].size for v in self._cache.values()) > CACHE_CELLS
               and len(self._cache) > 1):
            self._cache.popitem(last=False)
        return self._cache[k]

    def fine_window(self, r0: int, r1: int, c0: int, c1: int
                    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(fine values, tainted, fine row0, fine col0) of the fine cells whose centres lie
        in auxiliary pixels [r0, r1) × [c0, c1); NaN and tainted where no region holds
        them."""
        i0, i1 = _fine_range(r0, r1, self.f, self.fine.height)
        j0, j1 = _fine_range(c0, c1, self.f, self.fine.width)
        out = np.full((i1 - i0, j1 - j0), np.nan, np.float32)
        taint = np.ones(out.shape, bool)
        for k, (a0, a1, b0, b1) in enumerate(self.regions):
            if a0 >= r1 or a1 <= r0 or b0 >= c1 or b1 <= c0:
                continue
            vals, bad, ri, cj = self._region(k)
            y0, y1 = max(i0, ri), min(i1, ri + vals.shape[0])
            x0, x1 = max(j0, cj), min(j1, cj + vals.shape[1])
            if y1 > y0 and x1 > x0:
                out[y0 - i0:y1 - i0, x0 - j0:x1 - j0] = vals[y0 - ri:y1 - ri, x0 - cj:x1 - cj]
                taint[y0 - i0:y1 - i0, x0 - j0:x1 - j0] = bad[y0 - ri:y1 - ri, x0 - cj:x1 - cj]
        return out, taint, i0, j0

    def onto(self, src_win, dst: np.ndarray, dst_transform: Affine, dst_crs,
             lanczos_reach: int) -> np.ndarray:
        """The fine auxiliary over aux window `src_win` (rasterio Window) reprojected onto
        dst by Lanczos; True in the returned mask where a cell must take today's value
        instead (tainted fine cells within Lanczos' reach, or no fine value)."""
        r0, c0 = int(src_win.row_off), int(src_win.col_off)
        vals, taint, i0, j0 = self.fine_window(r0, r0 + int(src_win.height), c0,
                                               c0 + int(src_win.width))
        t = self.fine.window_transform(i0, j0)
        crs = self.aux.crs or LOCAL_CRS
        reproject_exact(vals, dst, src_transform=t, src_crs=crs, src_nodata=np.nan,
                        dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
                        resampling=Resampling.lanczos)
        fallback = np.isnan(dst)
        if taint.any():
            grown = ndimage.binary_dilation(taint, iterations=lanczos_reach).astype(np.uint8)
            mark = np.zeros(dst.shape, np.uint8)
            reproject_exact(grown, mark, src_transform=t, src_crs=crs,
                            dst_transform=dst_transform, dst_crs=dst_crs,
                            resampling=Resampling.nearest)
            fallback |= mark.astype(bool)
        return fallback


CHECK_CELLS = 50_000      # valid cells the self-check reads (the first windows, row order)


def check_scale(f: float) -> tuple[int, int]:
    """(step of the self-check's Laplacian in DEM cells: about the auxiliary's cell, rows and
    columns each window is grown by for it)."""
    step = int(min(max(round(f), 2), 6))
    return step, 2 * step + 4


def self_check(reader, dem_ds, band: int, windows: list, step: int) -> Optional[float]:
    """How rough the DEM − auxiliary difference is around the voids with the models, over
    how rough it is with Lanczos alone (RMS of its Laplacian at `step` cells, the scale of
    the auxiliary's cell, over the first CHECK_CELLS valid cells of the windows; None when no
    cell can tell). Delta fill interpolates that difference smoothly across a void, so its
    error there is what this roughness measures; on the held-out DEMs and the real pair
    the ratio followed delta fill's RMSE ratio in voids (docs/quality.md)."""
    from ..raster.io import RowBands

    sums = {False: 0.0, True: 0.0}
    n = 0
    s = step
    bands = RowBands(dem_ds, band, 1 << 22)
    for r, c in windows:
        if n >= CHECK_CELLS:
            break
        if r.stop - r.start <= 2 * s or c.stop - c.start <= 2 * s:
            continue
        z = bands.window(r, c).astype(np.float64)
        lap = {}
        for resampled in (True, False):
            d = z - reader.window((r, c), resampled=resampled)
            lap[resampled] = (4 * d[s:-s, s:-s] - d[:-2 * s, s:-s] - d[2 * s:, s:-s]
                              - d[s:-s, :-2 * s] - d[s:-s, 2 * s:])
        ok = np.isfinite(lap[True]) & np.isfinite(lap[False])
        n += int(ok.sum())
        for k in sums:
            sums[k] += float((lap[k][ok] ** 2).sum())
    if n < 100 or sums[True] <= 0:
        return None
    return math.sqrt(sums[False] / sums[True])


def rejected_line(sr: "AuxSuperResolver", ratio: float) -> str:
    """The log line when the self-check turned the models' auxiliary down."""
    return (f"{sr.head}: brought onto the repair grid by GDAL Lanczos. The bundled "
            f"super-resolution models were tried around the voids and made the DEM − "
            f"auxiliary difference {ratio:.2f}× as rough there as Lanczos does: this "
            "auxiliary differs from the DEM by more than missing detail (another product or "
            "epoch), and the models would add the wrong detail.")


def accepted_line(line: str, ratio: float) -> str:
    return (line.rstrip(".") + f"; around the voids they make the DEM − auxiliary "
            f"difference {ratio:.2f}× as rough as Lanczos does.")


def build(ds, band: int, aux: Grid, grid: Grid, aux_windows, monitor: Monitor
          ) -> tuple[Optional[AuxSuperResolver], str]:
    """(the super-resolver or None, the log line saying what brings the auxiliary onto the
    repair grid and why)."""
    from ..errors import RuntimeMissing
    from .blend import model_upsampler

    p = plan(aux, grid)
    where = "" if (grid.crs is None or aux.crs is None or grid.crs == aux.crs) else \
        " into the DEM's CRS"
    head = (f"AUXILIARY is ×{p.factor:.3g} coarser than the DEM (cell sizes compared in "
            "metres)")
    if p.sr_factor is None:
        return None, f"{head}: brought onto the repair grid by GDAL Lanczos ({p.why})."
    fine = sr_grid(aux, p.sr_factor)
    notes: list[str] = []
    try:
        up = model_upsampler(None, aux, fine, "cpu", 1, Monitor(info=notes.append))
    except RuntimeMissing:
        return None, (f"{head}: brought onto the repair grid by GDAL Lanczos (neither ONNX "
                      "Runtime nor PyTorch is installed to run the bundled super-resolution "
                      "models; Raster ▸ DEM Super-Resolution ▸ Install / repair "
                      "dependencies…).")
    except DemSrError as exc:
        return None, f"{head}: brought onto the repair grid by GDAL Lanczos ({exc})"
    sr = AuxSuperResolver(ds, band, aux, p.sr_factor, up, aux_windows)
    sr.head = head
    device = next((n.split("; device: ", 1)[1].rstrip(".") for n in notes
                   if "; device: " in n), "")
    then = f"then GDAL Lanczos{where}"
    line = (f"{head}: brought onto a grid ×{p.sr_factor:.3g} finer than its own with the "
            f"bundled ×{p.sr_factor:.3g} super-resolution route ({up.name}"
            f"{'; ' + device if device else ''}), {then}; "
            f"only around the voids ({len(sr.regions)} region(s) of the auxiliary).")
    return sr, line
