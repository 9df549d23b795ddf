"""Synthetic voids shaped like SRTM/ALOS radar voids, for training and evaluation.

Radar DEM voids come from shadow and layover on steep slopes facing away from
(or towards) the sensor, and from low coherence on water and sand. They are
elongated along the look direction, share one orientation per scene, have
ragged edges and come in clusters. We draw them as ellipses whose radius is
perturbed by low-frequency harmonics of the angle (ragged, sometimes bent
outlines), all oriented near one scene-wide look direction (± 25°), 5–60
pixels across (longest axis), placed with probability growing with slope,
and some of them with one or two smaller satellites. Voids never touch the
raster border (a border void is outside the DEM's footprint, not a hole).
Everything is drawn from the given NumPy generator, so a seed reproduces it.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

MIN_SIZE, MAX_SIZE = 5, 60


def _blob(size: float, aspect: float, angle: float, rng: np.random.Generator
          ) -> np.ndarray:
    """A boolean ragged ellipse whose longest axis is about `size` pixels."""
    a = size / 2.0
    b = max(a / aspect, 1.6)
    half = int(math.ceil(a * 1.35)) + 1
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = x * ca + y * sa, -x * sa + y * ca
    theta = np.arctan2(v / b, u / a)
    wobble = np.ones_like(theta)
    for k in range(2, 6):  # ragged outline: a few random low harmonics
        wobble += rng.uniform(0.0, 0.22 / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    bend = rng.uniform(-0.25, 0.25)  # shadows follow ridges: bend the long axis a little
    r = np.hypot(u / a, (v - bend * (u * u) / max(a, 1.0)) / b)
    return r <= wobble * 0.95


def _slope_weights(dem: np.ndarray) -> np.ndarray:
    """Placement probability: steep cells are likelier void centres (radar shadow/layover)."""
    z = np.where(np.isfinite(dem), dem, np.nanmean(dem) if np.isfinite(dem).any() else 0.0)
    gy, gx = np.gradient(z.astype(np.float64))
    g = np.hypot(gx, gy)
    scale = np.percentile(g, 90) or 1.0
    w = 0.15 + np.clip(g / scale, 0, 3) ** 2
    w[~np.isfinite(dem)] = 0.0
    return w


def synthetic_voids(dem: np.ndarray, rng: np.random.Generator, coverage: float = 0.08,
                    min_size: int = MIN_SIZE, max_size: int = MAX_SIZE,
                    look_angle: Optional[float] = None, margin: int = 3) -> np.ndarray:
    """A void mask (True = void) for `dem` (NaN = existing nodata, never chosen).

    Voids are added until about `coverage` of the valid cells are void; sizes
    follow a log-uniform law between min_size and max_size pixels (longest axis),
    so small voids are common and big ones rare, as in SRTM.
    """
    h, w = dem.shape
    mask = np.zeros((h, w), bool)
    valid = np.isfinite(dem)
    if h < 2 * margin + min_size or w < 2 * margin + min_size or not valid.any():
        return mask
    weights = _slope_weights(dem)
    # elevations near the float32 limit overflow the slopes: such cells are never chosen
    weights[~np.isfinite(weights)] = 0.0
    weights[:margin], weights[-margin:], weights[:, :margin], weights[:, -margin:] = 0, 0, 0, 0
    total = weights.sum()
    if not total > 0 or not np.isfinite(total):
        return mask
    p = (weights / total).ravel()
    look = rng.uniform(0, np.pi) if look_angle is None else look_angle
    target = coverage * valid.sum()
    biggest = min(max_size, (min(h, w) - 2 * margin) * 0.8)
    for _ in range(10000):
        if mask.sum() >= target:
            break
        size = math.exp(rng.uniform(math.log(min_size), math.log(max(biggest, min_size))))
        centre = int(rng.choice(p.size, p=p))
        cr, cc = divmod(centre, w)
        parts = [(cr, cc, size)]
        if rng.random() < 0.35:  # clusters: satellites along the look direction
            for _k in range(int(rng.integers(1, 3))):
                d = size * rng.uniform(0.4, 0.9)
                ang = look + rng.normal(0, 0.3)
                parts.append((int(cr + d * math.sin(ang)), int(cc + d * math.cos(ang)),
                              max(min_size, size * rng.uniform(0.3, 0.6))))
        for r0, c0, s in parts:
            blob = _blob(s, rng.uniform(1.3, 3.5), look + rng.normal(0, 0.45), rng)
            k = blob.shape[0] // 2
            top, left = r0 - k, c0 - k
            # clip to the raster minus the margin
            t0, l0 = max(top, margin), max(left, margin)
            t1, l1 = min(top + blob.shape[0], h - margin), min(left + blob.shape[1], w - margin)
            if t1 <= t0 or l1 <= l0:
                continue
            mask[t0:t1, l0:l1] |= blob[t0 - top:t1 - top, l0 - left:l1 - left]
    mask &= valid
    return mask


def synthetic_auxiliary(dem: np.ndarray, rng: np.random.Generator, factor: float = 4.0,
                        error: float = 0.01, bias: float = 0.02, shift: float = 0.25,
                        voids: float = 0.0, smooth: float = 8.0, changes: float = 0.0
                        ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A second DEM of the same area as another product would give it, for training and
    evaluation of the auxiliary-DEM fills: `dem` (NaN = nodata) area-averaged over cells
    `factor` times larger whose grid is shifted by `shift` of a cell in x and y, plus a
    smooth random error (Gaussian-filtered noise, `smooth` coarse cells wide) of standard
    deviation `error` × relief, plus `bias` × relief, with `voids` of its own (coverage).
    `changes`: the share of the area where the terrain itself differs between the two
    products (another epoch: glaciers, landslides, pits, embankments): smooth local bumps
    and hollows 3–30 DEM pixels wide, up to 5 % of the relief deep, added before averaging.

    Returns (the coarse array, NaN = nodata; (factor, row offset, column offset) of its
    grid in `dem` pixels): the coarse cell (i, j) covers dem rows offset + i·factor …
    and columns likewise. Relief = 99th − 1st percentile of the valid cells.
    """
    from scipy import ndimage

    from ..raster.warp import area_weights
    from .fill import fill_nearest

    valid = np.isfinite(dem)
    lo, hi = np.percentile(dem[valid], [1, 99])
    relief = max(float(hi - lo), 1e-3)
    off = float(shift) * factor
    h, w = dem.shape
    nh, nw = int((h - off) // factor), int((w - off) // factor)
    a_y = area_weights(h, nh, factor, off)
    a_x = area_weights(w, nw, factor, off)
    base = fill_nearest(np.where(valid, dem, np.nan)).astype(np.float64)
    if changes > 0:
        base += _terrain_changes(base.shape, rng, changes, relief)
    coarse = a_y @ base @ a_x.T
    gone = a_y @ (~valid).astype(np.float64) @ a_x.T > 0.5   # mostly nodata: nodata
    noise = ndimage.gaussian_filter(rng.standard_normal((nh, nw)), smooth, mode="reflect")
    noise *= error * relief / max(float(noise.std()), 1e-12)
    out = coarse + noise + bias * relief
    out[gone] = np.nan
    if voids > 0:
        out[synthetic_voids(np.where(gone, np.nanmean(out), out), rng, coverage=voids)] = np.nan
    return out.astype(np.float32), (float(factor), off, off)


def _terrain_changes(shape: tuple[int, int], rng: np.random.Generator, share: float,
                     relief: float) -> np.ndarray:
    """Local elevation changes covering about `share` of the area (synthetic_auxiliary)."""
    h, w = shape
    out = np.zeros(shape)
    covered, target = 0.0, share * h * w
    for _ in range(10000):
        if covered >= target:
            break
        r = rng.uniform(1.5, 15.0)                      # 3–30 px across
        amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.005, 0.05) * relief
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        k = int(3 * r) + 1
        r0, r1 = max(int(cy) - k, 0), min(int(cy) + k + 1, h)
        c0, c1 = max(int(cx) - k, 0), min(int(cx) + k + 1, w)
        if r1 <= r0 or c1 <= c0:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        out[r0:r1, c0:c1] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        covered += np.pi * (2 * r) ** 2
    return out


def write_synthetic_auxiliary(dem: np.ndarray, grid, rng: np.random.Generator, path: str,
                              **params) -> str:
    """synthetic_auxiliary(dem, rng, **params) written as a GeoTIFF on its own coarse,
    shifted grid (dem lies on `grid`), as a user's second product would come."""
    from ..raster.grid import Grid
    from ..raster.write import write_array

    aux, (f, ro, co) = synthetic_auxiliary(dem, rng, **params)
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    write_array(path, aux, Grid(t, aux.shape[1], aux.shape[0], grid.crs))
    return path


def training_auxiliary_params(rng: np.random.Generator) -> dict:
    """Random settings of synthetic_auxiliary for one training scene: products 2–10 times
    coarser (log-uniform), smooth errors of 0.2–2 % of the relief over 4–12 coarse cells, a
    bias of up to ±4 %, a shift of up to half a cell, voids of their own in a third of the
    scenes (up to 3 %), and terrain that changed between the two in half of them (up to 20 %
    of the area), so a model learns when not to trust the auxiliary."""
    return dict(factor=float(np.exp(rng.uniform(np.log(2.0), np.log(10.0)))),
                error=float(rng.uniform(0.002, 0.02)), bias=float(rng.uniform(-0.04, 0.04)),
                shift=float(rng.uniform(0.0, 0.5)), smooth=float(rng.uniform(4.0, 12.0)),
                voids=float(rng.uniform(0.0, 0.03)) if rng.random() < 1 / 3 else 0.0,
                changes=float(rng.uniform(0.0, 0.2)) if rng.random() < 0.5 else 0.0)
