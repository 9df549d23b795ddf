"""Output grid maths: extent kept, pixel sizes, and which input cell an output pixel covers."""
import numpy as np
import pytest
import rasterio
from affine import Affine

from demsr.core.errors import DemSrError
from demsr.core.raster.grid import Grid, output_grid, require_north_up, source_index


def _grid(res=10.0, w=100, h=80, x0=500000.0, y0=4000000.0, crs=None):
    return Grid(Affine(res, 0, x0, 0, -res, y0), w, h, crs)


@pytest.mark.parametrize("scale", [2, 3, 4, 1.5625, 2.5])
def test_scale_keeps_extent_and_divides_pixel_size(scale):
    src = _grid()
    dst = output_grid(src, scale=scale)
    assert dst.bounds == pytest.approx(src.bounds, abs=1e-6)
    assert dst.width == round(src.width * scale) and dst.height == round(src.height * scale)
    assert dst.res[0] == pytest.approx(src.width * 10.0 / dst.width)
    if float(scale).is_integer():
        assert dst.res == pytest.approx((10.0 / scale, 10.0 / scale))


def test_target_resolution_is_exact_and_anchored_top_left():
    src = _grid(res=12.5, w=101, h=77)
    dst = output_grid(src, target_resolution=8.0)
    assert dst.res == (8.0, 8.0)
    assert (dst.transform.c, dst.transform.f) == (src.transform.c, src.transform.f)
    assert dst.width == round(101 * 12.5 / 8) and dst.height == round(77 * 12.5 / 8)


def test_output_pixels_fall_in_the_right_input_cell_geographic(dems_dir):
    # An SRTM-like EPSG:4326 grid: the centre of every output pixel must lie inside
    # the input cell that floor(source coordinate) names, checked in degrees.
    with rasterio.open(dems_dir / "pysheds_dem_3arcsec.tif") as ds:
        src = Grid(ds.transform, ds.width, ds.height, ds.crs)
    assert src.is_geographic
    dst = output_grid(src, scale=3)
    rows, cols = np.arange(dst.height), np.arange(dst.width)
    r, _ = source_index(src, dst, rows, np.zeros_like(rows))
    _, c = source_index(src, dst, np.zeros_like(cols), cols)
    x_centre = dst.transform.c + (cols + 0.5) * dst.transform.a
    cell_left = src.transform.c + c * src.transform.a
    assert np.all((x_centre >= cell_left) & (x_centre < cell_left + src.transform.a))
    y_centre = dst.transform.f + (rows + 0.5) * dst.transform.e
    cell_top = src.transform.f + r * src.transform.e
    assert np.all((y_centre <= cell_top) & (y_centre > cell_top + src.transform.e))
    # exactly 3 output pixels per input cell in each direction
    assert np.all(np.bincount(c) == 3) and np.all(np.bincount(r) == 3)


@pytest.mark.parametrize("kwargs", [dict(scale=1.0), dict(scale=0.5), dict(scale=17),
                                    dict(scale=float("nan")), dict(target_resolution=20.0),
                                    dict(target_resolution=0.1)])
def test_factors_that_are_not_super_resolution_are_refused(kwargs):
    with pytest.raises(DemSrError, match="factor|finer|supported"):
        output_grid(_grid(), **kwargs)


def test_rotated_and_south_up_grids_are_refused():
    with pytest.raises(DemSrError, match="rotated"):
        require_north_up(Affine(10, 1, 0, 0, -10, 0))
    with pytest.raises(DemSrError, match="north-up"):
        require_north_up(Affine(10, 0, 0, 0, 10, 0))
