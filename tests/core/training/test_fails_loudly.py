"""Training fails loudly: a NaN validation, a full disk, a NaN setting and side files that
would overwrite an input stop the run with a message, before work where they can."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
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


def test_a_write_failing_midway_is_a_message_and_leaves_no_temporary(hr, tmp_path):
    """Files cannot grow past 20 kB (as on a full disk): the model (about 10 kB) is written,
    the resume file (weights and optimiser state) is not."""
    out = tmp_path / "out"
    out.mkdir()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from demsr.core.errors import DemSrError
        from demsr.core.training.train import run_training
        from _model_helpers import tiny_sr_config
        cfg = tiny_sr_config({str(hr)!r}, {str(out / 'm.pt')!r}, epochs=1, steps_per_epoch=2)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            run_training(cfg)
            print("RESULT: success")
        except DemSrError as exc:
            print("RESULT:", exc)
    """)
    helpers = str(Path(__file__).resolve().parents[2] / "helpers")  # _model_helpers
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=helpers))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT:"))
    assert "m.pt.resume' failed" in line or "Cannot write or read" in line, line
    assert not [n for n in os.listdir(out) if n.endswith(".partial")], os.listdir(out)


def test_a_refused_resume_file_is_not_answered_with_torchs_unsafe_hint(hr, tmp_path):
    out = tmp_path / "m.pt"
    (tmp_path / "m.pt.resume").write_bytes(np.random.default_rng(0).bytes(3000))
    warnings = []
    run_training(tiny_sr_config(str(hr), out, epochs=1, steps_per_epoch=2),
                 Monitor(warning=warnings.append))
    text = " ".join(w for w in warnings if "Cannot resume" in w)
    assert "not a file of tensors" in text and "weights_only" not in text, warnings
