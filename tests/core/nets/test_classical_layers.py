"""The fixed classical layers inside FastSR: Lanczos equals GDAL's, back-projection
restores the block means, and an untrained FastSR already beats Lanczos."""

import numpy as np
import pytest
import rasterio
from affine import Affine

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from _checkout import PACKAGE  # noqa: E402
from demsr.core.nets import classical_layers, registry  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.raster.warp import resample  # noqa: E402
from demsr.core.raster.degrade import degrade_array  # noqa: E402

LIDAR = PACKAGE / "resources" / "demo" / "lidar_1m.tif"


@pytest.fixture(scope="module")
def hr():
    with rasterio.open(LIDAR) as ds:
        return read_band(ds, 1)[:192, :192].astype(np.float32)


def _gdal_lanczos(lr, s):
    h, w = lr.shape
    return resample(lr, Affine(s, 0, 0, 0, -s, 1e4), (h * s, w * s),
                    Affine(1, 0, 0, 0, -1, 1e4), "lanczos")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lanczos_equals_gdal(hr, scale):
    lr = degrade_array(hr, scale)
    ours = F.pixel_shuffle(classical_layers.subpixels(torch.from_numpy(lr)[None, None],
                                               classical_layers.lanczos_weights(scale)),
                           scale)[0, 0].numpy()
    gdal = _gdal_lanczos(lr, scale)
    b = 4 * scale  # edges: we repeat border cells, GDAL renormalises its kernel
    assert np.abs(ours - gdal)[b:-b, b:-b].max() < 1e-5 * np.ptp(hr) + 1e-4


@pytest.mark.parametrize("scale", [2, 4])
def test_back_projection_restores_block_means_and_lowers_error(hr, scale):
    lr = torch.from_numpy(degrade_array(hr, scale))[None, None]
    w = classical_layers.lanczos_weights(scale)
    up = F.pixel_shuffle(classical_layers.subpixels(lr, w), scale)
    bp = F.pixel_shuffle(classical_layers.back_project(classical_layers.subpixels(lr, w), lr, w,
                                                       2), scale)
    b = 4 * scale
    gap = lambda y: (F.avg_pool2d(y, scale) - lr)[..., 4:-4, 4:-4].abs().mean()  # noqa
    assert gap(bp) < 0.2 * gap(up)
    rmse = lambda y: float(((y[0, 0].numpy() - hr)[b:-b, b:-b] ** 2).mean() ** 0.5)  # noqa
    assert rmse(bp) < 0.97 * rmse(up)


def test_untrained_fast_is_lanczos_plus_back_projection(hr):
    torch.manual_seed(0)
    model = registry.build("fast", 2).eval()  # residual layers start at zero
    lr = torch.from_numpy(degrade_array(hr, 2))[None, None]
    w = classical_layers.lanczos_weights(2)
    with torch.no_grad():
        out = model(lr)
    expect = F.pixel_shuffle(classical_layers.back_project(classical_layers.subpixels(lr, w), lr, w,
                                                    model.hparams["back_projection"]), 2)
    assert torch.allclose(out, expect, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bilinear_subpixels_equal_torch_bilinear_upsampling(hr, scale):
    """The sub-pixel kernels FastSR scales its residual with are PyTorch's bilinear
    upsampling (align_corners=False), borders included."""
    x = torch.from_numpy(degrade_array(hr, scale))[None, None]
    ours = F.pixel_shuffle(classical_layers.subpixels(x, classical_layers.bilinear_weights(scale)),
                           scale)
    torch_up = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    assert ours.shape == torch_up.shape
    assert torch.allclose(ours, torch_up, atol=1e-4, rtol=0)  # metres, float32 sums
    assert (ours - torch_up).abs().max() < 1e-6 * float(x.abs().max()) + 1e-5
