"""Models inside the streaming engine: tiled == untiled, scale checks, bundled defaults."""
import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402 - `make test` installs it; a missing torch must fail, not skip

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.nets import checkpoint  # noqa: E402
from demsr.core.nets.bundled import sr_scales as bundled_scales  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402

from _model_helpers import dem_crop, model_tiled_and_untiled, tiny_fast  # noqa: E402


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.transform


@pytest.fixture(scope="module")
def crop(dems_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("inf") / "crop.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", path, 100, 120, 90)
    return path


@pytest.mark.parametrize("scale", [2, 4])
def test_tiled_equals_untiled(tmp_path, crop, scale):
    model_path = str(tmp_path / "m.pt")
    checkpoint.save(checkpoint.from_model(tiny_fast(scale), "torch-bicubic"), model_path)
    whole, tiled, tiles = model_tiled_and_untiled(crop, model_path, scale, tmp_path)
    assert tiles > 4
    assert whole.shape == (90 * scale, 90 * scale)
    np.testing.assert_allclose(tiled, whole, atol=1e-3, rtol=0)
    # and the network changed something relative to plain interpolation
    lz = str(tmp_path / "lz.tif")
    superresolve(SuperResolveRequest(str(crop), lz, scale=scale, method="cubic"))
    assert np.abs(whole - _read(lz)[0]).max() > 0.01


def test_model_of_other_scale_is_an_error(tmp_path, crop):
    model_path = str(tmp_path / "m4.pt")
    checkpoint.save(checkpoint.from_model(tiny_fast(4), "torch-bicubic"), model_path)
    with pytest.raises(DemSrError, match=r"covers factors any factor above ×1 up to ×8"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "o.tif"), scale=9,
                                         method="model", model_path=model_path))
    assert not (tmp_path / "o.tif").exists()


def test_foreign_model_is_a_clear_error(tmp_path, crop):
    bad = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(3)}, str(bad))
    with pytest.raises(DemSrError, match="not a DEM SR model"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "o.tif"), scale=2,
                                         method="model", model_path=str(bad)))


def test_bundled_default_per_scale(tmp_path, crop):
    assert {2, 3, 4} <= set(bundled_scales())
    out = str(tmp_path / "b.tif")
    res = superresolve(SuperResolveRequest(str(crop), out, scale=2, method="model"))
    assert "demsr_fast_x2" in res.method
    data, _ = _read(out)
    assert data.shape == (180, 180) and np.isfinite(data).all()
    res = superresolve(SuperResolveRequest(str(crop), out, scale=3, method="model"))
    assert "demsr_fast_x3.pt" in res.method and _read(out)[0].shape == (270, 270)
    res = superresolve(SuperResolveRequest(str(crop), out, scale=6, method="model"))
    assert "demsr_fast_x4.pt" in res.method and _read(out)[0].shape == (540, 540)
    with pytest.raises(DemSrError, match="no bundled model for a ×9"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "c.tif"), scale=9,
                                         method="model"))
