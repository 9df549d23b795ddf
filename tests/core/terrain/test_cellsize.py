"""Cell sizes: geotransform for projected grids, metres at each row's latitude for geographic."""
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from demsr.core.errors import DemSrError
from demsr.core.raster.grid import Grid
from demsr.core.terrain.cellsize import cell_sizes, metres_per_degree


def test_metres_per_degree_known_values():
    # WGS 84: 1° of longitude is 111 319.49 m at the equator, 1° of latitude 110 574.3 m
    # there and 111 693.9 m at the pole (standard geodesy tables).
    lon, lat = metres_per_degree(np.array([0.0, 90.0]))
    assert lon[0] == pytest.approx(111319.49, abs=0.05)
    assert lat[0] == pytest.approx(110574.27, abs=0.05)
    assert lat[1] == pytest.approx(111693.98, abs=0.05)
    assert lon[1] == pytest.approx(0.0, abs=1e-6)


def test_geographic_rows_match_geodesic_distances():
    import pyproj
    res = 3 / 3600
    grid = Grid(Affine(res, 0, 30.0, 0, -res, 41.0), 10, 600, CRS.from_epsg(4326))
    sizes = cell_sizes(grid)
    geod = pyproj.Geod(ellps="WGS84")
    for row in (0, 299, 599):
        lat = 41.0 - (row + 0.5) * res
        _, _, dx = geod.inv(30.0, lat, 30.0 + res, lat)
        _, _, dy = geod.inv(30.0, lat - res / 2, 30.0, lat + res / 2)
        assert sizes.dx[row] == pytest.approx(dx, rel=1e-6)
        assert sizes.dy[row] == pytest.approx(dy, rel=1e-6)
    assert np.all(np.diff(sizes.dx) > 0)            # rows run south: wider towards the equator


def test_projected_and_crsless_grids_use_the_geotransform():
    for crs in (CRS.from_epsg(32633), None):
        sizes = cell_sizes(Grid(Affine(20.0, 0, 5e5, 0, -25.0, 7e6), 4, 3, crs))
        assert np.all(sizes.dx == 20.0) and np.all(sizes.dy == 25.0)


def test_impossible_latitudes_are_refused():
    grid = Grid(Affine(1.0, 0, 0, 0, -1.0, 120.0), 4, 4, CRS.from_epsg(4326))
    with pytest.raises(DemSrError, match="latitude"):
        cell_sizes(grid)
