"""Slope, aspect and curvatures from 3×3 windows.

Slope and aspect use Horn's (1981) weighted differences, so they agree with
`gdaldem slope`/`aspect` and QGIS's slope tools. Curvatures use the
Evans–Young least-squares quadratic over the 3×3 window (Florinsky 2016,
Shary 1995), which is exact for quadratic surfaces and less noise-prone than
Zevenbergen–Thorne's interpolating polynomial. All curvatures are in 1/m
(1/ground unit; not ×100), and positive means convex: hilltops, ridges and
slope shoulders are positive, pits, valleys and footslopes negative.

Missing neighbours (raster edge, nodata) are never used as elevations. A
missing neighbour is replaced by linear extrapolation through the centre,
2·z0 − z(opposite), which gives exact one-sided gradients on planes; a missing
diagonal whose opposite is missing too (raster corners) comes from the plane
through the centre and its two cardinal neighbours. A cell with both
neighbours of a cardinal pair missing (isolated cells, one-pixel strips) gets
nodata. Interior cells with nine valid values are computed exactly as the
formulas say.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..monitor import Monitor
from .cellsize import CellSizes

SURFACE_DERIVATIVES = ("slope", "aspect", "plan_curvature", "profile_curvature",
                       "tangential_curvature")
CURVATURES = ("plan_curvature", "profile_curvature", "tangential_curvature")
# Below this squared gradient (1 cm per km) the gradient direction, and so the
# direction-dependent curvatures, are noise; they are set to 0 as in GRASS and SAGA.
FLAT_GRADIENT2 = 1e-10
BLOCK_ROWS = 256


def _window(zp: np.ndarray, r0: int, r1: int) -> dict[tuple[int, int], np.ndarray]:
    """The nine shifted float32 views (di, dj) → z[i+di, j+dj] for rows r0..r1 of the padded
    DEM, with missing neighbours extrapolated (see the module docstring)."""
    h, w = r1 - r0, zp.shape[1] - 2
    raw = {(di, dj): zp[r0 + 1 + di:r0 + 1 + di + h, 1 + dj:1 + dj + w]
           for di in (-1, 0, 1) for dj in (-1, 0, 1)}
    centre = raw[(0, 0)]
    out = {(0, 0): centre}
    # Cardinal neighbours first, then diagonals, which may also use the plane through
    # the centre and the two cardinal neighbours beside them (corners of the raster).
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
        nb = raw[(di, dj)]
        missing = np.isnan(nb)
        if missing.any():
            nb = np.where(missing, 2 * centre - raw[(-di, -dj)], nb)
            if di and dj:
                still = np.isnan(nb)
                if still.any():
                    nb = np.where(still, out[(di, 0)] + out[(0, dj)] - centre, nb)
        out[(di, dj)] = nb
    return out


def _horn(z: dict, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horn's dz/dx (east) and dz/dy (north).

    The weighted sums are taken in single precision in gdaldem's order, so that
    results equal gdal:slope's; the rounding (< 0.003° on 1 m lidar) is far
    below any DEM's noise.
    """
    west = z[(-1, -1)] + z[(0, -1)] + z[(0, -1)] + z[(1, -1)]
    east = z[(-1, 1)] + z[(0, 1)] + z[(0, 1)] + z[(1, 1)]
    south = z[(1, -1)] + z[(1, 0)] + z[(1, 0)] + z[(1, 1)]
    north = z[(-1, -1)] + z[(-1, 0)] + z[(-1, 0)] + z[(-1, 1)]
    p = -(west - east).astype(np.float64) / (8 * dx)
    q = -(south - north).astype(np.float64) / (8 * dy)
    return p, q


def evans_young(z: dict, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    """p, q, r, s, t = z_x, z_y, z_xx, z_xy, z_yy of the least-squares quadratic
    (x east, y north)."""
    z = {key: v.astype(np.float64) for key, v in z.items()}
    left = z[(-1, -1)] + z[(0, -1)] + z[(1, -1)]
    right = z[(-1, 1)] + z[(0, 1)] + z[(1, 1)]
    top = z[(-1, -1)] + z[(-1, 0)] + z[(-1, 1)]
    bottom = z[(1, -1)] + z[(1, 0)] + z[(1, 1)]
    mid_col = z[(-1, 0)] + z[(0, 0)] + z[(1, 0)]
    mid_row = z[(0, -1)] + z[(0, 0)] + z[(0, 1)]
    p = (right - left) / (6 * dx)
    q = (top - bottom) / (6 * dy)
    r = (left + right - 2 * mid_col) / (3 * dx * dx)
    t = (top + bottom - 2 * mid_row) / (3 * dy * dy)
    s = (z[(-1, 1)] + z[(1, -1)] - z[(-1, -1)] - z[(1, 1)]) / (4 * dx * dy)
    return p, q, r, s, t


def curvatures_from_derivatives(p, q, r, s, t) -> dict[str, np.ndarray]:
    """Plan, profile and tangential curvature (1/m, convex positive) from partial derivatives.

    profile = normal curvature along the gradient, tangential = normal curvature
    along the contour, plan = curvature of the contour line itself
    (tangential = plan · sin(slope)).
    """
    g2 = p * p + q * q
    flat = g2 < FLAT_GRADIENT2
    g2s = np.where(flat, 1.0, g2)
    w = 1.0 + g2
    along = p * p * r + 2 * p * q * s + q * q * t
    across = q * q * r - 2 * p * q * s + p * p * t
    out = {
        "profile_curvature": -along / (g2s * w ** 1.5),
        "plan_curvature": -across / g2s ** 1.5,
        "tangential_curvature": -across / (g2s * np.sqrt(w)),
    }
    for value in out.values():
        value[flat & np.isfinite(value)] = 0.0
    return out


def surface_derivatives(dem: np.ndarray, sizes: CellSizes, which: set[str],
                        monitor: Optional[Monitor] = None) -> dict[str, np.ndarray]:
    """Requested slope (degrees), aspect (degrees clockwise from north, the direction the
    slope faces; nodata where flat) and curvatures, float32 with NaN = nodata."""
    monitor = monitor or Monitor()
    which = set(which) & set(SURFACE_DERIVATIVES)
    h, w = dem.shape
    out = {name: np.full((h, w), np.nan, np.float32) for name in which}
    if not which:
        return out
    zp = np.pad(dem.astype(np.float32, copy=False), 1, constant_values=np.nan)
    for r0 in range(0, h, BLOCK_ROWS):
        monitor.check()
        r1 = min(r0 + BLOCK_ROWS, h)
        z = _window(zp, r0, r1)
        dx = sizes.dx[r0:r1, None]
        dy = sizes.dy[r0:r1, None]
        if which & {"slope", "aspect"}:
            p, q = _horn(z, dx, dy)
            if "slope" in which:
                out["slope"][r0:r1] = np.degrees(np.arctan(np.hypot(p, q)))
            if "aspect" in which:
                aspect = np.degrees(np.arctan2(-p, -q)) % 360.0
                aspect[(p == 0) & (q == 0)] = np.nan
                out["aspect"][r0:r1] = aspect
        if which & set(CURVATURES):
            curv = curvatures_from_derivatives(*evans_young(z, dx, dy))
            for name in which & set(CURVATURES):
                out[name][r0:r1] = curv[name]
        monitor.progress(r1 / h)
    return out


def horn_slope(dem: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Slope in degrees: Terrain derivatives' Horn slope, one cell size for the whole array."""
    rows = dem.shape[0]
    sizes = CellSizes(np.full(rows, float(dx)), np.full(rows, float(dy)))
    return surface_derivatives(dem, sizes, {"slope"})["slope"]
