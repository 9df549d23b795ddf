"""The README's "Guarantees", tried as a careless or hostile user would: through qgis_process
(exit code and message) and processing.run, on real DEM crops."""
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException

import _system_helpers
from _checkout import PACKAGE

SAGEHEN = "flopy_sagehen_10m.tif"


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(alg, params):
    import processing

    return processing.run(f"demsr:{alg}", params)


def _qp(qgis_process, alg, **params):
    proc = qgis_process("run", f"demsr:{alg}", "--", *[f"{k}={v}" for k, v in params.items()])
    return proc.returncode, proc.stdout + proc.stderr


# -- 1. An output never replaces an input, nor another output of the same run ----------------

@pytest.mark.slow
def test_superresolve_output_equal_to_input_is_refused_by_qgis_process(qgis_process, crop):
    src = crop(SAGEHEN, 100, 100, 120, 120)
    before = _digest(src)
    rc, text = _qp(qgis_process, "superresolve", INPUT=src, OUTPUT=src, METHOD="lanczos")
    assert rc != 0, text[-2000:]
    assert "OUTPUT and INPUT are the same file" in text, text[-2000:]
    assert _digest(src) == before


@pytest.mark.slow
def test_derivatives_two_outputs_on_one_file_are_refused_by_qgis_process(qgis_process, crop,
                                                                         tmp_path):
    src = crop(SAGEHEN, 100, 100, 120, 120)
    out = tmp_path / "a.tif"
    rc, text = _qp(qgis_process, "derivatives", INPUT=src, SLOPE=out, ASPECT=out)
    assert rc != 0, text[-2000:]
    assert "SLOPE and ASPECT are the same file" in text, text[-2000:]
    assert not out.exists()


def _aliases(src: Path, tmp_path: Path) -> dict:
    """Other names of the same file: ./, .., a symlink, a hard link."""
    link = tmp_path / "link.tif"
    link.symlink_to(src)
    hard = tmp_path / "hard.tif"
    os.link(src, hard)
    return {"same": str(src),
            "dot": os.path.join(str(src.parent), ".", src.name),
            "dotdot": os.path.join(str(src.parent), "sub", "..", src.name),
            "symlink": str(link), "hardlink": str(hard)}


@pytest.mark.parametrize("alias", ["same", "dot", "dotdot", "symlink", "hardlink"])
def test_superresolve_never_overwrites_its_input(provider, crop, tmp_path, alias):
    src = Path(crop(SAGEHEN, 100, 100, 80, 80))
    (src.parent / "sub").mkdir(exist_ok=True)
    out = _aliases(src, tmp_path)[alias]
    before = _digest(src)
    with pytest.raises(QgsProcessingException, match="OUTPUT and INPUT are the same file"):
        _run("superresolve", {"INPUT": str(src), "OUTPUT": out, "METHOD": "lanczos"})
    assert _digest(src) == before


@pytest.mark.parametrize("param", ["OUTPUT", "FILLED_MASK"])
def test_voidrepair_never_overwrites_its_input(provider, crop, tmp_path, param):
    src = crop(SAGEHEN, 100, 100, 80, 80)
    before = _digest(src)
    params = {"INPUT": str(src), "OUTPUT": str(tmp_path / "o.tif"),
              "FILLED_MASK": str(tmp_path / "m.tif"), "DEVICE": "cpu"}
    params[param] = str(src)
    with pytest.raises(QgsProcessingException, match=f"{param} and INPUT are the same file"):
        _run("voidrepair", params)
    assert _digest(src) == before


def test_voidrepair_target_grid_is_an_input_too(provider, crop, tmp_path):
    src = crop(SAGEHEN, 100, 100, 80, 80)
    ref = crop(SAGEHEN, 0, 0, 40, 40)
    before = _digest(ref)
    with pytest.raises(QgsProcessingException, match="OUTPUT and TARGET_GRID are the same"):
        _run("voidrepair", {"INPUT": str(src), "TARGET_GRID": str(ref), "OUTPUT": str(ref),
                            "FILLED_MASK": str(tmp_path / "m.tif"), "DEVICE": "cpu"})
    assert _digest(ref) == before


def test_derivatives_never_overwrites_its_input(provider, crop, tmp_path):
    src = crop(SAGEHEN, 100, 100, 80, 80)
    before = _digest(src)
    with pytest.raises(QgsProcessingException, match="SLOPE and INPUT are the same file"):
        _run("derivatives", {"INPUT": str(src), "SLOPE": str(src)})
    assert _digest(src) == before


def test_evaluate_never_overwrites_its_input_or_reference(provider, crop, tmp_path):
    src = crop(SAGEHEN, 100, 100, 80, 80)
    ref = crop(SAGEHEN, 90, 90, 100, 100)
    before = _digest(src), _digest(ref)
    with pytest.raises(QgsProcessingException, match="OUTPUT_ERROR and INPUT are the same file"):
        _run("evaluate", {"INPUT": str(src), "REFERENCE": str(ref), "OUTPUT_ERROR": str(src)})
    with pytest.raises(QgsProcessingException,
                       match="OUTPUT_TABLE and REFERENCE are the same file"):
        _run("evaluate", {"INPUT": str(src), "REFERENCE": str(ref),
                          "OUTPUT_TABLE": str(ref.parent / "." / ref.name)})
    assert (_digest(src), _digest(ref)) == before


def test_derivatives_outputs_on_one_file_are_refused(provider, crop, tmp_path):
    src = crop(SAGEHEN, 100, 100, 80, 80)
    out = tmp_path / "a.tif"
    alias = tmp_path / "." / "a.tif"
    with pytest.raises(QgsProcessingException, match="SLOPE and ASPECT are the same file"):
        _run("derivatives", {"INPUT": str(src), "SLOPE": str(out), "ASPECT": str(alias)})
    assert not out.exists()


def test_train_output_model_equal_to_init_weights_is_refused(provider, crop, tmp_path):
    src = crop(SAGEHEN, 0, 0, 200, 200)
    model = tmp_path / "m.pt"
    shutil.copy(PACKAGE / "resources" / "models" /
                "demsr_fast_x2.pt", model)
    before = _digest(model)
    with pytest.raises(QgsProcessingException,
                       match="OUTPUT_MODEL and INIT_WEIGHTS are the same file"):
        _run("train", {"INPUT": [str(src)], "INIT_WEIGHTS": str(model),
                       "OUTPUT_MODEL": str(model), "EPOCHS": 1, "DEVICE": "cpu"})
    assert _digest(model) == before


# -- 2. A full disk or a failed write is an error, never a truncated "success" ---------------

@pytest.fixture
def small_disk(tmp_path):
    with _system_helpers.small_disk(tmp_path, 3) as mnt:
        yield mnt


@pytest.mark.slow
@pytest.mark.parametrize("alg,outputs", [
    ("superresolve", {"OUTPUT": "o.tif", "METHOD": "lanczos"}),
    ("derivatives", {"SLOPE": "s.tif", "ASPECT": "a.tif"}),
])
def test_full_disk_fails_with_figures_through_qgis_process(qgis_process, small_disk, dems_dir,
                                                           alg, outputs):
    params = {k: (small_disk / v if v.endswith(".tif") else v) for k, v in outputs.items()}
    rc, text = _qp(qgis_process, alg, INPUT=dems_dir / "oso_landslide_lidar_1.83m.tif",
                   **params)
    assert rc != 0, text[-2000:]
    assert f"MB free at {small_disk}" in text and "disk full:" in text, text[-2000:]
    assert "Traceback" not in text
    assert os.listdir(small_disk) == []


# -- Interruptions: a killed run's partial file is removed by the next run -------------------

@pytest.mark.slow
def test_killed_run_leaves_a_partial_that_the_next_run_removes(qgis_process, dems_dir, tmp_path):
    out = tmp_path / "big.tif"
    env = {k: v for k, v in os.environ.items() if k != "QGIS_CUSTOM_CONFIG_PATH"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([str(root / "scripts" / "qgis_process"), "run", "demsr:superresolve",
                             "--", f"INPUT={dems_dir / 'oso_landslide_lidar_1.83m.tif'}",
                             "SCALE=4", "METHOD=model", "DEVICE=cpu", "TILE_SIZE=256",
                             f"OUTPUT={out}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(tmp_path.glob(".big.tif.*.partial.tif")):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.kill()  # SIGKILL: no cleanup code runs
        proc.wait()
    left = list(tmp_path.glob(".big.tif.*.partial.tif"))
    assert left, "the run ended before it wrote its partial file"
    assert str(proc.pid) in left[0].name
    rc, text = _qp(qgis_process, "superresolve", INPUT=dems_dir / "pypi_lidar_dem_1m.tif",
                   METHOD="lanczos", OUTPUT=out)
    assert rc == 0, text[-2000:]
    assert "partial file left behind by an interrupted run" in text, text[-2000:]
    assert not list(tmp_path.glob(".big.tif.*"))


# -- Parameters: a number that does not parse is an error naming it -------------------------

@pytest.mark.slow
@pytest.mark.parametrize("value,hint", [("abc", "is not a number."),
                                        ("1,5", "is not a number. Use a decimal point")])
def test_unparsable_target_resolution_is_an_error_through_qgis_process(qgis_process, crop,
                                                                      tmp_path, value, hint):
    src = crop(SAGEHEN, 100, 100, 60, 60)
    out = tmp_path / "o.tif"
    rc, text = _qp(qgis_process, "superresolve", INPUT=src, OUTPUT=out, METHOD="lanczos",
                   TARGET_RESOLUTION=value)
    assert rc != 0 and f"TARGET_RESOLUTION: '{value}' {hint}" in text, text[-2000:]
    assert not out.exists()


@pytest.mark.parametrize("alg,params", [
    ("voidrepair", {"TARGET_RESOLUTION": "abc", "FILLED_MASK": "m.tif"}),
    ("train", {"GRADIENT_WEIGHT": "0,1", "EPOCHS": 1}),
])
def test_unparsable_optional_numbers_are_errors(provider, crop, tmp_path, alg, params):
    src = crop(SAGEHEN, 0, 0, 200, 200)
    params = {k: (str(tmp_path / v) if str(v).endswith(".tif") else v) for k, v in params.items()}
    if alg == "train":
        params.update(INPUT=[str(src)], OUTPUT_MODEL=str(tmp_path / "m.pt"))
    else:
        params.update(INPUT=str(src), OUTPUT=str(tmp_path / "o.tif"))
    name = next(k for k in params if k in ("TARGET_RESOLUTION", "GRADIENT_WEIGHT"))
    with pytest.raises(QgsProcessingException, match=f"{name}: '{params[name]}' is not a number"):
        _run(alg, params)


# -- Training: one run per OUTPUT_MODEL ------------------------------------------------------

def test_second_training_on_the_same_model_is_refused(provider, crop, tmp_path):
    src = crop(SAGEHEN, 0, 0, 200, 200)
    model = tmp_path / "m.pt"
    with _system_helpers.lock_held_elsewhere(model) as holder:
        with pytest.raises(QgsProcessingException,
                           match=f"Another training \\(process {holder.pid}\\) is writing"):
            _run("train", {"INPUT": [str(src)], "OUTPUT_MODEL": str(model), "EPOCHS": 1,
                           "DEVICE": "cpu"})
    assert not model.exists()


# -- Out of memory and OS errors reach users as advice --------------------------------------

def test_out_of_memory_and_os_errors_become_advice(provider):
    import numpy as np
    import torch

    from demsr.algorithms.common import user_errors

    with pytest.raises(QgsProcessingException, match="Out of memory.*Close other programs"):
        with user_errors():
            np.empty((10 ** 8, 10 ** 8), np.float32)  # 40 PB: refused by the allocator
    with pytest.raises(QgsProcessingException, match="Out of memory.*TILE_SIZE"):
        with user_errors():
            torch.empty(10 ** 16, dtype=torch.float32)
    with pytest.raises(QgsProcessingException, match="Cannot write or read '/proc/x.tif'"):
        with user_errors():
            open("/proc/x.tif", "w")
    with pytest.raises(ZeroDivisionError):  # a real bug keeps its traceback
        with user_errors():
            1 / 0
