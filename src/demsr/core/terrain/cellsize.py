"""Cell sizes in ground units, so gradients of a DEM in degrees mean something.

Projected (and CRS-less) grids take the pixel size from the geotransform, in
the CRS's linear unit, which must be the unit of the elevations. Geographic
grids get metres per degree on the WGS 84 ellipsoid at each row's centre
latitude: a cell of an EPSG:4326 SRTM tile is ~92 m tall but only
~92·cos(lat) m wide, and every other datum in use differs from WGS 84 by
less than 1e-4 of that.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DemSrError
from ..raster.grid import Grid

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
_E2 = WGS84_F * (2.0 - WGS84_F)


@dataclass(frozen=True)
class CellSizes:
    """Width (dx) and height (dy) of the cells of each row, in ground units."""

    dx: np.ndarray  # shape (height,), float64
    dy: np.ndarray  # shape (height,), float64

    @property
    def diagonal(self) -> np.ndarray:
        return np.hypot(self.dx, self.dy)


def metres_per_degree(lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(east-west, north-south) metres per degree at geodetic latitudes (WGS 84)."""
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    w = np.sqrt(1.0 - _E2 * np.sin(phi) ** 2)
    per_lon = np.pi / 180.0 * WGS84_A * np.cos(phi) / w
    per_lat = np.pi / 180.0 * WGS84_A * (1.0 - _E2) / w ** 3
    return per_lon, per_lat


def row_latitudes(grid: Grid) -> np.ndarray:
    """Latitude (degrees) of the centre of each row of a geographic grid."""
    t = grid.transform
    return t.f + (np.arange(grid.height, dtype=np.float64) + 0.5) * t.e


def cell_sizes(grid: Grid) -> CellSizes:
    """Per-row cell sizes: metres for geographic grids, CRS units otherwise."""
    resx, resy = grid.res
    if not grid.is_geographic:
        return CellSizes(np.full(grid.height, resx), np.full(grid.height, resy))
    lat = row_latitudes(grid)
    if np.any(np.abs(lat) > 90.0):
        raise DemSrError(
            "The raster has a geographic CRS but rows beyond ±90° latitude "
            f"({lat.min():.3f}° … {lat.max():.3f}°): its geotransform or CRS is wrong. "
            "Assign the right CRS (Layer Properties ▸ Source) or warp it first."
        )
    per_lon, per_lat = metres_per_degree(lat)
    # A row centred on a pole has no width; a tiny one keeps the maths finite there.
    return CellSizes(np.maximum(resx * per_lon, 1e-6), resy * per_lat)


def cell_size_m(res: tuple[float, float], geographic: bool, lat: float = 0.0
                ) -> tuple[float, float]:
    """Cell size in metres (x, y); on geographic grids at latitude `lat` (WGS 84)."""
    if not geographic:
        return float(res[0]), float(res[1])
    per_lon, per_lat = metres_per_degree(np.array([lat]))
    return float(res[0] * per_lon[0]), float(res[1] * per_lat[0])
