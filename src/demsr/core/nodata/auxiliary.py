"""A second DEM of the area (the auxiliary DEM) and the delta surface fill.

Delta surface fill (Grohman, Kroenung & Strebeck 2006, used for SRTM's voids):
the auxiliary DEM is brought onto the repair grid, the difference DEM − auxiliary
is known around each void, that difference is interpolated across the void from
its rim (harmonic: it never overshoots the rim's differences), and the
auxiliary plus the interpolated difference fills the void. A constant offset or a
tilt between the two DEMs (another vertical datum, a geoid, a smooth error) is
removed exactly; what remains is the auxiliary's own detail error inside the void.

The auxiliary may have any CRS, pixel size and vertical offset, and voids of
its own: void cells it does not cover are filled by the first fill and counted.
Every window is brought onto the repair grid from the auxiliary file by GDAL
with an exact pixel mapping, so a window gives the same values as the whole
raster would (tiled = untiled). For METHOD=delta a coarser auxiliary is first
super-resolved by the bundled models where that measures better
(AuxReader(superresolve=True), core/pipelines/aux_superresolve.py).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from scipy import ndimage

from ..errors import DemSrError
from ..raster.grid import Grid, overlap_bounds
from ..raster.io import GDAL_ENV, DemSource, open_dem, read_band
from ..raster.warp import LOCAL_CRS, reproject_exact
from ..monitor import Monitor
from .inpaint import fill_window, fill_windows, inpaint

# Interpolation of a coarser auxiliary onto the repair grid: measured on the validation DEMs
# with auxiliaries area-averaged ×4 (scripts/evaluate_voids.py --auxiliary, 3 realisations),
# delta fill / first fill in voids, geometric mean: Lanczos 0.371, cubic 0.395, bilinear
# 0.456, cubic spline 0.541; a biharmonic delta surface was worse with each (0.52–0.63). A
# finer auxiliary is area-averaged (what a coarser cell sees).
COARSER_METHOD, FINER_METHOD = Resampling.lanczos, Resampling.average
READ_MARGIN = 4          # auxiliary pixels read beyond a window (Lanczos' reach + rounding)
LANCZOS_REACH = 5        # fine cells a super-resolved auxiliary's Lanczos step reads (3, widened)
# Median DEM − auxiliary over the void rims beyond which the two look like different units
# or vertical datums (EGM96 vs ellipsoid heights differ by up to ~100 m; a geoid-to-geoid
# change by a few metres); and the rim elevations' spread ratio that says "another unit".
IMPLAUSIBLE_OFFSET_M = 50.0
IMPLAUSIBLE_SCALE = (0.6, 1.6)
RIM_SAMPLE = 200_000     # rim cells kept for the plausibility figures


@dataclass
class RimStats:
    """DEM and auxiliary values on the void rims (a bounded sample), for the plausibility
    warning."""

    dem: list = field(default_factory=list)
    aux: list = field(default_factory=list)
    count: int = 0

    def add(self, z: np.ndarray, a: np.ndarray, unknown: np.ndarray) -> None:
        rim = ndimage.binary_dilation(unknown) & ~unknown & np.isfinite(z) & np.isfinite(a)
        if self.count < RIM_SAMPLE and rim.any():
            self.dem.append(z[rim])
            self.aux.append(a[rim])
            self.count += int(rim.sum())

    def warning(self, name: str) -> Optional[str]:
        if not self.count:
            return None
        z, a = np.concatenate(self.dem), np.concatenate(self.aux)
        offset = float(np.median(z - a))
        iqr = lambda v: float(np.subtract(*np.percentile(v, [75, 25])))  # noqa: E731
        scale = iqr(z) / iqr(a) if iqr(a) > 0 and iqr(z) > 0 and z.size >= 20 else 1.0
        lo, hi = IMPLAUSIBLE_SCALE
        if abs(offset) <= IMPLAUSIBLE_OFFSET_M and lo <= scale <= hi:
            return None
        why = []
        if abs(offset) > IMPLAUSIBLE_OFFSET_M:
            why.append(f"the DEM is {offset:+.1f} m from it (median over {z.size} void-rim "
                       "cells)")
        if not lo <= scale <= hi:
            why.append(f"its elevations spread {1 / scale:.2f}× as much as the DEM's there")
        return (f"AUXILIARY '{name}' looks like another unit or vertical datum: "
                + " and ".join(why) + ". The delta fill removes a constant or smooth offset, "
                "but check the auxiliary's unit (metres, not feet) and vertical datum; if it is "
                "the wrong one, convert it (Raster Calculator) and run again.")


def open_auxiliary(path: str, dem: Grid) -> DemSource:
    """The auxiliary DEM's band 1, refused before any work when it cannot serve: no CRS
    relation to the DEM, no overlap, or no valid cell over the DEM."""
    name = os.path.basename(path)
    try:
        aux = open_dem(path, 1)
    except DemSrError as exc:
        raise DemSrError(f"AUXILIARY: {exc}") from None
    if (aux.grid.crs is None) != (dem.crs is None):
        which = "AUXILIARY" if aux.grid.crs is None else "the DEM"
        raise DemSrError(f"{which} has no CRS, so the two cannot be placed on each other. "
                         "Assign the right CRS (Raster ▸ Projections ▸ Assign Projection) and "
                         "run again.")
    try:
        meet = overlap_bounds(dem, aux.grid)
    except ValueError as exc:
        raise DemSrError(f"AUXILIARY '{name}' cannot be brought into the DEM's CRS ({exc}).")
    if meet is None:
        raise DemSrError(f"AUXILIARY '{name}' does not overlap the DEM: give a DEM of the same "
                         "area (any CRS and resolution).")
    if not _has_data_over(aux, dem):
        raise DemSrError(f"AUXILIARY '{name}' has no valid cell over the DEM (all nodata "
                         "there): give a DEM that covers the voids.")
    return aux


def _has_data_over(aux: DemSource, dem: Grid) -> bool:
    """Whether any auxiliary cell over the DEM holds data (read at most ~4 Mpx: a decimated
    read takes nodata where any cell of a block is nodata, so it reads in full windows)."""
    with rasterio.Env(**GDAL_ENV), rasterio.open(aux.path) as ds:
        win = _aux_window(ds, dem, aux.grid.crs, dem.bounds)
        if win is None:
            return False
        step = max(1, int(win.height) * int(win.width) // 4_000_000 + 1)
        rows = max(1, int(math.ceil(win.height / step)))
        for r in range(int(win.row_off), int(win.row_off + win.height), rows):
            part = Window(win.col_off, r, win.width, min(rows, win.row_off + win.height - r))
            if np.isfinite(read_band(ds, aux.band, part)).any():
                return True
    return False


def _aux_window(ds, grid: Grid, aux_crs, bounds, other_crs: Optional[bool] = None
                ) -> Optional[Window]:
    """The auxiliary pixels that cover `bounds` (in grid's CRS) plus READ_MARGIN;
    `other_crs`: whether the two CRSs differ, when the caller knows (comparing two CRSs
    takes GDAL tens of milliseconds)."""
    if other_crs is None:
        other_crs = grid.crs is not None and aux_crs is not None and grid.crs != aux_crs
    if other_crs:
        bounds = transform_bounds(grid.crs, aux_crs, *bounds, densify_pts=21)
    w = from_bounds(*bounds, transform=ds.transform)
    r0 = max(int(math.floor(w.row_off)) - READ_MARGIN, 0)
    c0 = max(int(math.floor(w.col_off)) - READ_MARGIN, 0)
    r1 = min(int(math.ceil(w.row_off + w.height)) + READ_MARGIN, ds.height)
    c1 = min(int(math.ceil(w.col_off + w.width)) + READ_MARGIN, ds.width)
    if r1 <= r0 or c1 <= c0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


class AuxReader:
    """The auxiliary DEM brought onto windows of the repair grid (NaN where it has no
    data). Use as a context manager.

    `superresolve` (METHOD=delta turns it on; give `dem`, the DEM with the voids): an
    auxiliary coarser than the grid is super-resolved on its own grid by the bundled models
    around `windows` (the repair-grid windows that will be read), then reprojected by
    Lanczos (core/pipelines/aux_superresolve.py), if around the voids that makes the DEM −
    auxiliary difference smoother than Lanczos does (a real second product can differ by
    more than missing detail, and the models then add the wrong detail). The log
    (`monitor`) says what ran and why. Off (DS-HAT's inputs: its models were trained with
    the Lanczos auxiliary): Lanczos."""

    def __init__(self, aux: DemSource, grid: Grid, superresolve: bool = False,
                 windows: Optional[Iterable[tuple[slice, slice]]] = None,
                 dem: Optional[DemSource] = None, monitor: Optional[Monitor] = None):
        self.aux, self.grid = aux, grid
        self._other_crs = (grid.crs is not None and aux.grid.crs is not None
                           and grid.crs != aux.grid.crs)
        finer = aux.grid.res[0] < grid.res[0] * 0.999 and not self._other_crs
        self.resampling = FINER_METHOD if finer else COARSER_METHOD
        self._superresolve = superresolve and not finer and dem is not None
        self._windows, self._dem = windows, dem
        self._monitor = monitor or Monitor()
        self.sr = None      # the AuxSuperResolver when the models run
        self.check = None   # the self-check's roughness ratio (models / Lanczos)
        self._env = rasterio.Env(**GDAL_ENV)
        self._ds = None

    def __enter__(self) -> "AuxReader":
        self._env.__enter__()
        self._ds = rasterio.open(self.aux.path)
        if self._superresolve:
            self._start_superresolution()
        return self

    def _start_superresolution(self) -> None:
        from ..pipelines import aux_superresolve as axs

        g = self.grid
        wins = list(self._windows or [(slice(0, g.height), slice(0, g.width))])
        f = axs.coarser_factor(self.aux.grid, g)
        step, grow = axs.check_scale(f)
        grown = [(slice(max(r.start - grow, 0), min(r.stop + grow, g.height)),
                  slice(max(c.start - grow, 0), min(c.stop + grow, g.width)))
                 for r, c in wins]
        aux_wins = []
        for win in grown:
            src_win = self._aux_window(win)[0]
            if src_win is not None:
                r0, c0 = int(src_win.row_off), int(src_win.col_off)
                aux_wins.append((r0, r0 + int(src_win.height), c0, c0 + int(src_win.width)))
        if not aux_wins:      # nothing to fill from the auxiliary: no runtime to load
            return
        self.sr, line = axs.build(self._ds, self.aux.band, self.aux.grid, g, aux_wins,
                                  self._monitor)
        if self.sr is not None:
            with rasterio.open(self._dem.path) as dem:
                self.check = axs.self_check(self, dem, self._dem.band, grown, step)
            if self.check is not None and self.check >= 1.0:
                line = axs.rejected_line(self.sr, self.check)
                self.sr = None
            elif self.check is not None:
                line = axs.accepted_line(line, self.check)
        self._monitor.info(line)

    def __exit__(self, *exc) -> None:
        self._ds.close()
        self._env.__exit__(*exc)

    def _aux_window(self, win: tuple[slice, slice]):
        """(the auxiliary pixels window `win` of the repair grid needs or None, win's
        transform, its shape)."""
        r, c = win
        h, w = r.stop - r.start, c.stop - c.start
        t = self.grid.window_transform(r.start, c.start)
        bounds = (t.c, t.f + h * t.e, t.c + w * t.a, t.f)
        return (_aux_window(self._ds, self.grid, self.aux.grid.crs, bounds,
                            self._other_crs), t, (h, w))

    def window(self, win: tuple[slice, slice], resampled: bool = False) -> np.ndarray:
        """The auxiliary on rows/cols `win` of the repair grid, float64, NaN = no data;
        `resampled`: GDAL's resampling alone even when the models run."""
        src_win, t, shape = self._aux_window(win)
        out = np.full(shape, np.nan, np.float32)
        if src_win is None:
            return out.astype(np.float64)
        crs = self.grid.crs or LOCAL_CRS
        fallback = None
        if self.sr is not None and not resampled:
            fallback = self.sr.onto(src_win, out, t, crs, LANCZOS_REACH)
            if not fallback.any():
                return out.astype(np.float64)
            fine = out
            out = np.full(shape, np.nan, np.float32)
        data = read_band(self._ds, self.aux.band, src_win)
        reproject_exact(np.ascontiguousarray(data, np.float32), out,
                        src_transform=self._ds.window_transform(src_win),
                        src_crs=self.aux.grid.crs or LOCAL_CRS, src_nodata=np.nan,
                        dst_transform=t, dst_crs=crs, dst_nodata=np.nan,
                        resampling=self.resampling, other_crs=self._other_crs)
        if fallback is not None:
            out = np.where(fallback, out, fine)
        return out.astype(np.float64)


def delta_fill(z: np.ndarray, a: np.ndarray, unknown: np.ndarray,
               also: Optional[np.ndarray] = None
               ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(values, from the auxiliary?, `also` across the void) for the unknown cells of window
    z (NaN = absent; in z[unknown] order): auxiliary + the DEM − auxiliary difference
    interpolated harmonically from the rim where the auxiliary has data and the difference
    can be reached; the first fill (fill_window) elsewhere. `also`: a field known where
    the difference is (UNCERTAINTY's local variance of it), interpolated by the same solve
    (NaN outside the cells from the auxiliary)."""
    d = z - a                                   # NaN where either is missing
    target = unknown & np.isfinite(a)
    values = np.full(z.shape, np.nan)
    across = None if also is None else np.full(z.shape, np.nan)
    if target.any():
        cut = unknown & ~target
        fields = [np.where(cut, np.nan, d)] + ([] if also is None else
                                               [np.where(cut, np.nan, also)])
        solved = fill_windows(fields, target, biharmonic=False)
        values[target] = a[target] + solved[0]
        if also is not None:
            across[target] = solved[1]
    target = np.isfinite(values)                # the difference reached these cells
    rest = unknown & ~target
    if rest.any():
        # the first fill for what the auxiliary cannot give, from the DEM and the delta
        # values just found (they are the best boundary values it has)
        zz = np.where(target, values, z)
        zz[rest] = np.nan
        values[rest] = fill_window(zz, rest)
    return values[unknown], target[unknown], None if across is None else across[unknown]


def delta_inpaint(dem: np.ndarray, fill: np.ndarray, aux: np.ndarray,
                  monitor: Optional[Monitor] = None) -> tuple[np.ndarray, np.ndarray]:
    """inpaint() with the delta surface fill: (a float32 copy of `dem` with the cells of
    `fill` filled, the cells filled from the auxiliary); `aux` is the auxiliary on dem's
    grid (NaN = no data). The same values as the streamed METHOD=delta."""
    from_aux = np.zeros(dem.shape, bool)

    def window_fill(win, z, unknown):
        values, flags, _ = delta_fill(z, np.asarray(aux[win], np.float64), unknown)
        from_aux[win][unknown] = flags
        return values

    return inpaint(dem, fill, monitor, window_fill), from_aux


def auxiliary_on(aux: DemSource, grid: Grid) -> np.ndarray:
    """The whole auxiliary DEM on `grid` (float32, NaN = no data), as AuxReader brings each
    window: the in-memory routes and training read it so."""
    with AuxReader(aux, grid) as reader:
        return reader.window((slice(0, grid.height), slice(0, grid.width))).astype(np.float32)
