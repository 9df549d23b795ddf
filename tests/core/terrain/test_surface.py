"""Slope, aspect and curvatures against analytic surfaces, GDAL and an independent fit."""
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from demsr.core.raster.grid import Grid
from demsr.core.terrain import compute_derivatives
from demsr.core.terrain.cellsize import CellSizes, cell_sizes
from demsr.core.terrain.surface import surface_derivatives

CURV = ("plan_curvature", "profile_curvature", "tangential_curvature")
ALL = {"slope", "aspect", *CURV}


def _sizes(h, d=1.0):
    return CellSizes(np.full(h, d), np.full(h, d))


def _xy(n, d=1.0, x0=0.0, y0=0.0):
    """Cell-centre coordinates (x east, y north) of an n×n north-up grid centred on (x0, y0)."""
    c = (np.arange(n) - (n - 1) / 2) * d
    x, y = np.meshgrid(x0 + c, y0 - c)
    return x, y


def _derive(z, d=1.0):
    return surface_derivatives(z.astype(np.float32), _sizes(z.shape[0], d), ALL)


def test_sphere_curvatures_match_analytic():
    r_sphere, n, d = 2000.0, 301, 5.0
    x, y = _xy(n, d)
    rho = np.hypot(x, y)
    z = np.sqrt(r_sphere ** 2 - rho ** 2) - 1900.0  # dome; |z| small keeps float32 rounding low
    out = _derive(z, d)
    sel = (rho > 50) & (rho < 700)                  # away from the flat top and the edge
    # Every normal section of a sphere has curvature 1/R; the contour circle 1/rho.
    np.testing.assert_allclose(out["profile_curvature"][sel], 1 / r_sphere, rtol=2e-3)
    np.testing.assert_allclose(out["tangential_curvature"][sel], 1 / r_sphere, rtol=2e-3)
    np.testing.assert_allclose(out["plan_curvature"][sel], 1 / rho[sel], rtol=2e-3)
    # tangential = plan · sin(slope)
    s = np.radians(out["slope"][sel])
    np.testing.assert_allclose(out["tangential_curvature"][sel],
                               out["plan_curvature"][sel] * np.sin(s), rtol=1e-2)


def test_paraboloid_bowl_is_concave_and_exact():
    c, n, d = 0.002, 201, 2.0
    x, y = _xy(n, d)
    rho = np.hypot(x, y)
    z = c * rho ** 2
    out = _derive(z, d)
    sel = (rho > 10) & (np.abs(x) < 180) & (np.abs(y) < 180)
    g = 2 * c * rho[sel]
    np.testing.assert_allclose(out["profile_curvature"][sel], -2 * c / (1 + g ** 2) ** 1.5,
                               rtol=1e-3)
    np.testing.assert_allclose(out["plan_curvature"][sel], -1 / rho[sel], rtol=1e-3)
    np.testing.assert_allclose(out["tangential_curvature"][sel], -2 * c / np.sqrt(1 + g ** 2),
                               rtol=1e-3)
    np.testing.assert_allclose(out["slope"][sel], np.degrees(np.arctan(g)), atol=1e-3)


def test_saddle_along_its_axis():
    a, n, d = 400.0, 201, 1.0
    x, y = _xy(n, d)
    z = (x ** 2 - y ** 2) / (2 * a)
    out = _derive(z, d)
    row = n // 2                                    # y = 0: the valley-shaped x section
    cols = np.abs(x[row]) > 5
    cols[[0, -1]] = False                           # edge cells are extrapolated, not fitted
    xs = x[row, cols]
    np.testing.assert_allclose(out["profile_curvature"][row, cols],
                               -(1 / a) / (1 + (xs / a) ** 2) ** 1.5, rtol=1e-3)
    np.testing.assert_allclose(out["plan_curvature"][row, cols], 1 / np.abs(xs), rtol=1e-3)


def test_inclined_plane_everywhere_including_edges():
    n, d = 60, 5.0
    x, y = _xy(n, d)
    ge, gn = 0.3, -0.4                              # rises east, falls north: faces north-west
    z = 100 + ge * x + gn * y
    out = _derive(z, d)
    assert np.isfinite(out["slope"]).all()          # edges and corners defined
    np.testing.assert_allclose(out["slope"], np.degrees(np.arctan(0.5)), atol=1e-4)
    expected_aspect = np.degrees(np.arctan2(-ge, -gn)) % 360   # downslope azimuth
    assert 270 < expected_aspect < 360
    np.testing.assert_allclose(out["aspect"], expected_aspect, atol=1e-3)
    for name in CURV:
        assert np.abs(out[name]).max() < 1e-6


def test_flat_ground_has_no_aspect_and_zero_curvature():
    out = _derive(np.full((20, 20), 42.0))
    assert np.all(out["slope"] == 0)
    assert np.isnan(out["aspect"]).all()
    for name in CURV:
        assert np.all(out[name] == 0)


def test_nodata_is_never_used_as_elevation():
    n, d = 40, 10.0
    x, y = _xy(n, d)
    z = (50 + 0.2 * x + 0.1 * y).astype(np.float32)
    z[10:15, 20:26] = np.nan                        # a void
    z[30, :] = np.nan
    z[32, :] = np.nan                               # row 31 is a one-cell strip
    out = _derive(z, d)
    valid = np.isfinite(z)
    strip = np.zeros_like(valid)
    strip[31, :] = True
    ok = valid & ~strip
    np.testing.assert_allclose(out["slope"][ok], np.degrees(np.arctan(np.hypot(0.2, 0.1))),
                               atol=1e-4)
    for name in CURV:
        assert np.abs(out[name][ok]).max() < 1e-6
    for name in ALL:
        assert np.isnan(out[name][~valid]).all()
        # north and south neighbours both missing: no gradient can be formed
        assert np.isnan(out[name][31]).all()


def test_geographic_grid_uses_metres_not_degrees():
    """A 10 % plane laid on a 3-arcsecond EPSG:4326 grid at 60°N."""
    n, res = 80, 3 / 3600
    lat0, lon0 = 60.0, 10.0
    transform = Affine(res, 0, lon0, 0, -res, lat0)
    grid = Grid(transform, n, n, CRS.from_epsg(4326))
    sizes = cell_sizes(grid)
    assert 45 < sizes.dx.mean() < 48 and 92 < sizes.dy.mean() < 94   # ~46 m × 93 m
    rows, cols = np.mgrid[0:n, 0:n]
    east = (cols + 0.5) * res * sizes.dx[:, None] / res
    north = -(rows + 0.5) * sizes.dy[:, None]
    z = 0.06 * east + 0.08 * north
    out = compute_derivatives(z.astype(np.float32), grid, {"slope"})
    inner = out["slope"][2:-2, 2:-2]
    np.testing.assert_allclose(inner, np.degrees(np.arctan(0.1)), atol=0.01)


def test_curvatures_agree_with_independent_quadratic_fit(dems_dir):
    """Least-squares quadratic on each 3×3 window (numpy lstsq) and normal curvatures from
    the fundamental forms — a separate route to the same quantities."""
    with rasterio.open(dems_dir / "longyearbyen_1995_20m_xdem.tif") as ds:
        z = ds.read(1, window=((300, 420), (500, 620))).astype(np.float32)
        d = ds.res[0]
    out = _derive(z, d)
    rng = np.random.default_rng(0)
    rows = rng.integers(1, z.shape[0] - 1, 300)
    cols = rng.integers(1, z.shape[1] - 1, 300)
    oy, ox = np.mgrid[-1:2, -1:2]
    X, Y = (ox * d).ravel(), (-oy * d).ravel()
    A = np.column_stack([X * X / 2, X * Y, Y * Y / 2, X, Y, np.ones(9)])
    checked = 0
    for r, c in zip(rows, cols):
        win = z[r - 1:r + 2, c - 1:c + 2].astype(np.float64).ravel()
        (zxx, zxy, zyy, zx, zy, _), *_ = np.linalg.lstsq(A, win, rcond=None)
        g = np.hypot(zx, zy)
        if g < 1e-3:
            continue
        hess = np.array([[zxx, zxy], [zxy, zyy]])
        first = lambda u: u @ u + (np.array([zx, zy]) @ u) ** 2      # noqa: E731
        normal = lambda u: (u @ hess @ u) / (np.sqrt(1 + g * g) * first(u))  # noqa: E731
        down = -np.array([zx, zy]) / g
        along_contour = np.array([-zy, zx]) / g
        k_profile = -normal(down)
        k_tangential = -normal(along_contour)
        k_plan = k_tangential * np.sqrt(1 + g * g) / g                 # Meusnier
        for name, ref in (("profile_curvature", k_profile), ("tangential_curvature", k_tangential),
                          ("plan_curvature", k_plan)):
            assert out[name][r, c] == pytest.approx(ref, rel=1e-3, abs=1e-7), (name, r, c)
        checked += 1
    assert checked > 250


def test_slope_matches_gdaldem_horn_on_real_dem(dems_dir, tmp_path):
    from osgeo import gdal
    src = str(dems_dir / "oso_landslide_lidar_1.83m.tif")
    with rasterio.open(src) as ds:
        z = ds.read(1, masked=True).filled(np.nan).astype(np.float32)
        d = ds.res
    ref_path = str(tmp_path / "slope.tif")
    gdal.DEMProcessing(ref_path, src, "slope", alg="Horn")
    with rasterio.open(ref_path) as ds:
        ref = ds.read(1, masked=True)
    ours = surface_derivatives(z, CellSizes(np.full(z.shape[0], d[0]), np.full(z.shape[0], d[1])),
                               {"slope"})["slope"]
    interior = ~ref.mask
    interior[[0, -1], :] = interior[:, [0, -1]] = False
    assert interior.sum() > 0.9 * z.size
    assert np.abs(ours[interior] - ref.data[interior]).max() < 1e-3
