"""Training fails loudly: a NaN validation, a full disk, a NaN setting and side files that
would overwrite an input stop the run with a message, before work where they can."""
import os
import shutil

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402

import _system_helpers  # noqa: E402
from _model_helpers import tiny_sr_config  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"


@pytest.fixture
def hr(crop):
    return crop(SAGEHEN, 0, 0, 160, 160)


def test_a_nan_validation_stops_the_run_and_writes_no_model(hr, tmp_path):
    """Elevations near float32's limit (valid numbers) make every RMSE overflow to NaN."""
    with rasterio.open(hr, "r+") as ds:
        ds.write((ds.read(1).astype(np.float64) * 4e34).astype(np.float32), 1)
    out = tmp_path / "out" / "m.pt"
    out.parent.mkdir()
    with pytest.raises(DemSrError, match="validation RMSE of the starting model is nan"):
        run_training(tiny_sr_config(str(hr), out, epochs=1, steps_per_epoch=3))
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize("field,name", [("learning_rate", "LEARNING_RATE"),
                                        ("gradient_weight", "GRADIENT_WEIGHT")])
def test_nan_settings_are_refused_before_work(hr, tmp_path, field, name):
    out = tmp_path / "out" / "m.pt"
    out.parent.mkdir()
    with pytest.raises(DemSrError, match=f"{name} must be a number"):
        run_training(tiny_sr_config(str(hr), out, **{field: float("nan")}))
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize("side", ["m_curves.png", "m_metrics.csv", "m.pt.resume", "m.pt.lock"])
def test_side_files_of_the_model_never_overwrite_an_input(hr, tmp_path, side):
    """A GeoTIFF named like a side file (GDAL reads it whatever its name) is an input."""
    dem = tmp_path / side
    shutil.copy(hr, dem)
    before = dem.read_bytes()
    with pytest.raises(DemSrError, match="and INPUT are the same file"):
        run_training(tiny_sr_config(str(dem), tmp_path / "m.pt"))
    assert dem.read_bytes() == before and not (tmp_path / "m.pt").exists()


def test_a_full_disk_is_refused_before_work(hr, tmp_path):
    with _system_helpers.small_disk(tmp_path, 2) as mnt:
        with pytest.raises(DemSrError, match=rf"disk full: \d+ MB needed, \d+ MB free at {mnt}"):
            run_training(tiny_sr_config(str(hr), mnt / "m.pt"))
        assert os.listdir(mnt) == []
