"""Numbers that are not numbers, grids that are not what the user asked for, and the input
promise, through processing.run and qgis_process: each refused before work with a message
that says what is wrong and what to do, and no input touched."""
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from qgis.core import QgsProcessingException

SAGEHEN = "flopy_sagehen_10m.tif"


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(alg, params):
    import processing

    return processing.run(f"demsr:{alg}", params)


@pytest.mark.parametrize("alg,name,value", [
    ("superresolve", "TARGET_RESOLUTION", "nan"),
    ("superresolve", "SCALE", "nan"),
    ("voidrepair", "TARGET_RESOLUTION", "1e309"),
    ("voidrepair", "MAX_VOID_SIZE", "nan"),
    ("train", "GRADIENT_WEIGHT", "nan"),
    ("train", "LEARNING_RATE", "nan"),
])
def test_nan_and_infinite_numbers_are_refused(provider, crop, tmp_path, alg, name, value):
    src = crop(SAGEHEN, 0, 0, 60, 60)
    params = {name: value}
    if alg == "train":
        params.update(INPUT=[str(src)], OUTPUT_MODEL=str(tmp_path / "m.pt"), EPOCHS=1)
    elif alg == "voidrepair":
        params.update(INPUT=str(src), OUTPUT=str(tmp_path / "o.tif"),
                      FILLED_MASK=str(tmp_path / "m.tif"))
    else:
        params.update(INPUT=str(src), OUTPUT=str(tmp_path / "o.tif"), METHOD="lanczos")
    with pytest.raises(QgsProcessingException) as err:
        _run(alg, params)
    assert f"{name}: '{value}' is not a finite number" in str(err.value)
    assert "TARGET_GRID" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_nan_learning_rate_through_qgis_process_is_a_message_not_a_traceback(qgis_process,
                                                                              crop, tmp_path):
    src = crop(SAGEHEN, 0, 0, 60, 60)
    proc = qgis_process("run", "demsr:train", "--", f"INPUT={src}", "EPOCHS=1",
                        f"OUTPUT_MODEL={tmp_path / 'm.pt'}", "LEARNING_RATE=nan")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "LEARNING_RATE: 'nan' is not a finite number" in text
    assert "Traceback" not in text
    assert not (tmp_path / "m.pt").exists()


def test_a_scale_that_adds_no_cell_is_refused(provider, crop, tmp_path):
    src = crop(SAGEHEN, 0, 0, 60, 60)
    with pytest.raises(QgsProcessingException, match="SCALE 1.0000001 adds no cell"):
        _run("superresolve", {"INPUT": str(src), "OUTPUT": str(tmp_path / "o.tif"),
                              "METHOD": "lanczos", "SCALE": 1.0000001})
    assert not (tmp_path / "o.tif").exists()


def test_non_square_pixels_are_not_coarsened_without_a_word(provider, crop, tmp_path):
    """30 × 10 m pixels and TARGET_RESOLUTION 20: the rows would be merged."""
    src = crop(SAGEHEN, 0, 0, 60, 60)
    wide = tmp_path / "wide.tif"
    with rasterio.open(src) as ds:
        profile = ds.profile
        data = ds.read(1)
        t = ds.transform
    profile.update(transform=Affine(30.0, 0, t.c, 0, -10.0, t.f))
    with rasterio.open(wide, "w", **profile) as out:
        out.write(data, 1)
    with pytest.raises(QgsProcessingException, match=r"not square \(30 × 10 .*rows would be "
                                                     r"merged"):
        _run("superresolve", {"INPUT": str(wide), "OUTPUT": str(tmp_path / "o.tif"),
                              "METHOD": "lanczos", "TARGET_RESOLUTION": 20})
    res = _run("superresolve", {"INPUT": str(wide), "OUTPUT": str(tmp_path / "o.tif"),
                                "METHOD": "lanczos", "TARGET_RESOLUTION": 5})
    with rasterio.open(res["OUTPUT"]) as ds:
        assert ds.res == (5.0, 5.0) and (ds.width, ds.height) == (360, 120)


def test_a_picture_without_georeference_is_called_so(provider, tmp_path):
    png = tmp_path / "photo.png"
    with rasterio.open(png, "w", driver="PNG", width=20, height=20, count=1,
                       dtype="uint8") as ds:
        ds.write(np.arange(400, dtype=np.uint8).reshape(20, 20), 1)
    with pytest.raises(QgsProcessingException, match="has no georeference") as err:
        _run("superresolve", {"INPUT": str(png), "OUTPUT": str(tmp_path / "o.tif"),
                              "METHOD": "lanczos"})
    assert "north-up" not in str(err.value)


# -- The input promise, through more routes --------------------------------------------------

def test_evaluate_report_folder_holding_the_input_through_qgis_process(qgis_process, crop,
                                                                        tmp_path):
    """The issue's run: the INPUT inside `<report>_files` was deleted with rc 0."""
    folder = tmp_path / "report_files"
    folder.mkdir()
    dem = folder / "dem.tif"
    shutil.copy(crop(SAGEHEN, 100, 100, 60, 60), dem)
    (folder / "notes.txt").write_text("keep me")
    before = _digest(dem)
    proc = qgis_process("run", "demsr:evaluate", "--", f"INPUT={dem}", f"REFERENCE={dem}",
                        f"OUTPUT_HTML={tmp_path / 'report.html'}")
    assert proc.returncode != 0 and "holds the input" in proc.stdout + proc.stderr
    assert _digest(dem) == before and (folder / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("side", ["m_curves.png", "m.pt.lock"])
def test_train_side_files_never_replace_an_input(provider, crop, tmp_path, side):
    dem = tmp_path / side
    shutil.copy(crop(SAGEHEN, 0, 0, 120, 120), dem)
    before = _digest(dem)
    with pytest.raises(QgsProcessingException, match="and INPUT are the same file"):
        _run("train", {"INPUT": [str(dem)], "OUTPUT_MODEL": str(tmp_path / "m.pt"),
                       "EPOCHS": 1})
    assert _digest(dem) == before
