"""DS-HAT training data: scenes (whole rasters as Void repair prepares them) and crops.

A scene is a whole raster prepared exactly as Void repair would see it (first
fill, resampling onto the HR grid, auxiliary channels with per-raster
constants, computed on the whole raster because flow accumulation is not
local), with its truth (NaN = unknown). Synthetic scenes come from an HR DEM
(block mean ×factor, radar-like synthetic voids); pair scenes from the
user's LR DEM with real voids and its HR reference.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio

from ..errors import DemSrError
from ..monitor import Monitor
from ..nodata.auxiliary import auxiliary_on, open_auxiliary
from ..nodata.synthetic import (synthetic_voids, training_auxiliary_params,
                                write_synthetic_auxiliary)
from ..nodata.find import FILLED, classify_voids
from ..pipelines.dshat_inputs import Prepared, model_channels, prepare
from ..raster.grid import Grid, same_crs
from ..raster.io import GDAL_ENV, open_dem, read_band
from ..raster.degrade import degrade_array
from .patches import window_count


@dataclass
class Scene:
    """A whole raster prepared as the network sees it, and its truth (NaN = unknown)."""

    prep: Prepared
    truth: np.ndarray


def load_dem(path: str) -> tuple[np.ndarray, Grid]:
    """Band 1 (NaN = nodata) and its grid."""
    src = open_dem(path)
    with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
        return read_band(ds, 1), src.grid


def synthetic_scene(hr: np.ndarray, grid: Grid, factor: int, rng: np.random.Generator,
                    coverage: float, spectral=None, monitor: Optional[Monitor] = None,
                    auxiliary: bool = False, aux_path: Optional[str] = None) -> Scene:
    """LR (block mean ×factor) with synthetic voids, prepared onto the HR grid; with
    `auxiliary`, a synthetic second product of the area (training_auxiliary_params) guides
    it as AUXILIARY would; with `aux_path`, that real one (another DEM of the area)."""
    f = int(factor)
    h, w = (hr.shape[0] // f) * f, (hr.shape[1] // f) * f
    truth = hr[:h, :w]
    dst = Grid(grid.transform, w, h, grid.crs)
    if f == 1:
        lr, lgrid = truth.copy(), dst
    else:
        lr = degrade_array(truth, f, "blockmean")
        lgrid = Grid(grid.transform * grid.transform.scale(f), w // f, h // f, grid.crs)
    holes = synthetic_voids(lr, rng, coverage=coverage)
    lr = lr.copy()
    lr[holes] = np.nan
    classes, _, _ = classify_voids(lr)
    aux = auxiliary_on(open_auxiliary(aux_path, lgrid), lgrid) if aux_path else None
    if auxiliary and aux is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_synthetic_auxiliary(truth, dst, rng, os.path.join(tmp, "aux.tif"),
                                             **training_auxiliary_params(rng))
            aux = auxiliary_on(open_dem(path), lgrid)
    return Scene(_prepare(lr, lgrid, dst, classes, spectral, monitor, aux), truth)


def _prepare(lr, lgrid, dst, classes, spectral, monitor, aux) -> Prepared:
    return prepare(lr, lgrid, dst, classes, spectral, monitor, aux,
                   model_channels(aux is not None, 0 if spectral is None else len(spectral[0])))


def pair_scene(lr_path: str, ref_path: str, spectral=None,
               monitor: Optional[Monitor] = None, aux_path: Optional[str] = None) -> Scene:
    """The user's LR DEM (real voids) prepared onto its HR reference's grid, guided by its
    auxiliary DEM when given."""
    lr, lgrid = load_dem(lr_path)
    truth, rgrid = load_dem(ref_path)
    classes, _, _ = classify_voids(lr)
    aux = auxiliary_on(open_auxiliary(aux_path, lgrid), lgrid) if aux_path else None
    return Scene(_prepare(lr, lgrid, rgrid, classes, spectral, monitor, aux), truth)


def pair_factor(lr_path: str, ref_path: str) -> float:
    """How many times finer the reference's cells are than the LR DEM's (the geometric mean of
    x and y, by ground size: across CRSs through the grids' extents)."""
    lr, ref = open_dem(lr_path).grid, open_dem(ref_path).grid
    if not same_crs(lr, ref):
        from rasterio.warp import transform_bounds

        b = transform_bounds(lr.crs, ref.crs, *lr.bounds, densify_pts=21)
        lr_res = ((b[2] - b[0]) / lr.width, (b[3] - b[1]) / lr.height)
    else:
        lr_res = lr.res
    return float(np.sqrt(lr_res[0] / ref.res[0] * lr_res[1] / ref.res[1]))


def windows(scenes: list[Scene], ok: list[np.ndarray], crop: int, n: int,
            rng: np.random.Generator, prefer_voids: float = 0.7) -> list[tuple[int, int, int]]:
    """n (scene, row, col) crops that touch neither validation blocks nor unknown truth;
    most are the candidate with the most void pixels, so voids are seen often."""
    sizes = np.array([max(0, (s.truth.shape[0] - crop + 1) * (s.truth.shape[1] - crop + 1))
                      for s in scenes], np.float64)
    p = np.sqrt(sizes)
    p /= p.sum()
    out = []
    for _ in range(200 * n):
        if len(out) == n:
            break
        k = int(rng.choice(len(scenes), p=p))
        s = scenes[k]
        rows, cols = s.truth.shape[0] - crop + 1, s.truth.shape[1] - crop + 1
        rr, cc = rng.integers(0, rows, 16), rng.integers(0, cols, 16)
        good = np.flatnonzero(window_count(ok[k], rr, cc, crop) == 0)
        if good.size == 0:
            continue
        if rng.random() < prefer_voids:
            cls = s.prep.classes
            voids = [int((cls[rr[g]:rr[g] + crop, cc[g]:cc[g] + crop] == FILLED).sum())
                     for g in good]
            g = good[int(np.argmax(voids))]
        else:
            g = good[0]
        out.append((k, int(rr[g]), int(cc[g])))
    if len(out) < n:
        raise DemSrError("Could not find training crops free of nodata and validation blocks; "
                         "use larger or more complete DEMs, or a smaller PATCH_SIZE.")
    return out


def batch(scenes: list[Scene], wins, crop: int, rng: Optional[np.random.Generator]):
    """Stacked arrays (dem, mask, aux, sigma, truth) for crops, augmented when rng."""
    dem, msk, aux, sig, tru = [], [], [], [], []
    for k, r, c in wins:
        s = scenes[k]
        sl = (slice(r, r + crop), slice(c, c + crop))
        arrays = [s.prep.dem[sl][None], s.prep.voids[sl][None],
                  s.prep.aux[(slice(None),) + sl], s.truth[sl][None]]
        if rng is not None:
            rot, flip = int(rng.integers(4)), rng.random() < 0.5
            arrays = [np.rot90(a, rot, axes=(1, 2)) for a in arrays]
            if flip:
                arrays = [a[:, :, ::-1] for a in arrays]
        dem.append(arrays[0])
        msk.append(arrays[1])
        aux.append(arrays[2])
        tru.append(arrays[3])
        sig.append(s.prep.sigma)
    f = lambda xs: np.ascontiguousarray(np.stack(xs), dtype=np.float32)  # noqa: E731
    return f(dem), f(msk), f(aux), np.array(sig, np.float32)[:, None, None, None], f(tru)
