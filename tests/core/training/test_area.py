"""The torch area-average operator of training equals GDAL 'average' (the engine's finish)."""
import subprocess

import numpy as np
import pytest
import rasterio
from affine import Affine

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402

from demsr.core.raster.warp import area_average  # noqa: E402
from demsr.core.training.area import (apply, area_matrix, coarse_size,  # noqa: E402
                                      finish_matrix, to_torch)

from _model_helpers import dem_crop  # noqa: E402


def degrade_area(hr, factor: float):
    """(…, H, W) HR tensor → (…, h, w) LR on a grid `factor` times coarser anchored at the
    top-left corner (h = floor(H / factor)): the torch twin of GDAL 'average'."""
    h, w = coarse_size(hr.shape[-2], factor), coarse_size(hr.shape[-1], factor)
    a_y = to_torch(area_matrix(hr.shape[-2], h, factor), hr.device)
    a_x = a_y if w == h and hr.shape[-1] == hr.shape[-2] else \
        to_torch(area_matrix(hr.shape[-1], w, factor), hr.device)
    return apply(hr, a_y, a_x)


@pytest.mark.parametrize("factor", [1.5625, 2.5])
def test_torch_area_average_equals_gdal_average_on_a_real_crop(tmp_path, dems_dir, factor):
    hr_path = tmp_path / "hr.tif"
    hr = dem_crop(dems_dir / "pypi_lidar_dem_1m.tif", hr_path, 100, 150, 125)
    n = coarse_size(125, factor)
    ours = degrade_area(torch.from_numpy(hr.astype(np.float64))[None, None], factor)[0, 0]
    with rasterio.open(hr_path) as ds:
        t = ds.transform
    lr_t = t * Affine.scale(factor)
    engine = area_average(hr, t, (n, n), lr_t)  # what the engine finishes with
    np.testing.assert_allclose(ours.numpy(), engine, rtol=0, atol=1e-4)
    # and gdalwarp -r average itself, on the same coarser grid
    ref = tmp_path / "avg.tif"
    te = (t.c, t.f + n * factor * t.e, t.c + n * factor * t.a, t.f)  # xmin ymin xmax ymax
    subprocess.run(["gdalwarp", "-q", "-r", "average", "-te", *map(repr, te),
                    "-ts", str(n), str(n), str(hr_path), str(ref)], check=True)
    with rasterio.open(ref) as ds:
        gdal = ds.read(1)
        assert ds.transform.almost_equals(lr_t, precision=1e-9)
    np.testing.assert_allclose(ours.numpy(), gdal, rtol=0, atol=1e-4)
    # an area average, not a resampler: partial cells by their overlap, the mean kept
    w = area_matrix(125, n, factor)
    assert np.allclose(w.sum(axis=1), 1) and np.count_nonzero(w[0]) == int(np.ceil(factor))
    assert abs(float(ours.mean()) - hr[:int(n * factor), :int(n * factor)].mean()) < 0.05


def test_integer_factor_is_the_block_mean_and_the_finish_is_differentiable(dems_dir, tmp_path):
    hr = dem_crop(dems_dir / "flopy_sagehen_10m.tif", tmp_path / "hr.tif", 0, 0, 48)
    x = torch.from_numpy(hr.astype(np.float64))[None, None]
    np.testing.assert_allclose(degrade_area(x, 3).numpy(),
                               torch.nn.functional.avg_pool2d(x, 3).numpy(), atol=1e-9)
    # ×4 output over 16 LR cells onto HR rows 5..34 at ×2.5: each HR px averages 1.6 cells
    fin = finish_matrix(16, 4, 2.5, 5, 30)
    assert fin.shape == (30, 64) and np.allclose(fin.sum(axis=1), 1)
    y = torch.randn(1, 1, 64, 64, dtype=torch.float64, requires_grad=True)
    f = to_torch(fin).double()
    apply(y, f, f).sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="cannot be area-averaged"):
        finish_matrix(16, 2, 2.5, 0, 10)


def test_cubic_spline_finish_matrix_equals_gdal_cubic_spline_on_a_real_crop(dems_dir, tmp_path):
    """The other finish a model can be trained through: GDAL's cubic-spline kernel, measured
    as a separable map, equals the engine's 2-D warp (core.raster.warp.resample)."""
    from demsr.core.raster.warp import resample

    hr = dem_crop(dems_dir / "flopy_sagehen_10m.tif", tmp_path / "hr.tif", 50, 50, 64)
    x = (hr - hr.mean()).astype(np.float32)  # a ×4 output over 16 LR cells (64 fine cells)
    fin = finish_matrix(16, 4, 2.5, 5, 20, "cubicspline")  # HR rows/cols 5..24 at ×2.5
    assert np.allclose(fin.sum(axis=1), 1, atol=1e-6) and np.count_nonzero(fin[10]) > 3
    mid_t = Affine(1.0, 0, 7000.0, 0, -1.0, 9000.0)
    dst_t = Affine(1.6, 0, 7000.0 + 5 * 1.6, 0, -1.6, 9000.0 - 5 * 1.6)
    gdal = resample(x, mid_t, (20, 20), dst_t, "cubicspline")
    ours = fin @ x.astype(np.float64) @ fin.T
    np.testing.assert_allclose(ours, gdal, rtol=0, atol=1e-4)
    # not the area average: the kernel reaches beyond an HR pixel's footprint
    assert np.abs(ours - finish_matrix(16, 4, 2.5, 5, 20) @ x @
                  finish_matrix(16, 4, 2.5, 5, 20).T).max() > 0.05
