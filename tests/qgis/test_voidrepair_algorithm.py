"""demsr:voidrepair as users run it: processing.run in QGIS and qgis_process; training a
DS-HAT model through demsr:train and using it."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import (QgsApplication, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingOutputRasterLayer, QgsRasterLayer)

import demsr  # noqa: F401 - puts the private torch folder on sys.path


import torch  # noqa: E402,F401 - `make test` installs it; a missing torch must fail

from demsr.core.raster.io import read_band  # noqa: E402

from _dshat_helpers import four_band_raster, holed_dem, tiny_dshat  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAGEHEN = "flopy_sagehen_10m.tif"


def _run(params):
    import processing

    return processing.run("demsr:voidrepair", params)


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.read(1), ds.transform


def test_registered_with_public_parameters_and_help(provider):
    alg = QgsApplication.processingRegistry().algorithmById("demsr:voidrepair")
    assert alg is not None and alg.displayName() == "Void repair/SR (DS-HAT)"
    assert not alg.flags() & QgsProcessingAlgorithm.Flag.FlagNoThreading
    outputs = {o.name(): o for o in alg.outputDefinitions()}
    assert isinstance(outputs["OUTPUT"], QgsProcessingOutputRasterLayer)
    assert isinstance(outputs["FILLED_MASK"], QgsProcessingOutputRasterLayer)
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"INPUT", "BAND", "METHOD", "AUXILIARY", "TARGET_GRID", "TARGET_RESOLUTION",
            "SPECTRAL", "MODEL", "DEVICE", "OUTPUT", "FILLED_MASK", "UNCERTAINTY"} <= names
    assert isinstance(outputs["UNCERTAINTY"], QgsProcessingOutputRasterLayer)
    unc = alg.parameterDefinition("UNCERTAINTY")
    assert unc.flags() & unc.Flag.FlagOptional and not unc.createByDefault()
    assert alg.parameterDefinition("METHOD").options() == ["auto", "fill", "delta", "model"]
    for name in names:
        label = alg.parameterDefinition(name).description()  # help names the form's labels
        assert f"<b>{label}</b> ({name})" in alg.shortHelpString(), f"no help for {name}"
    train = QgsApplication.processingRegistry().algorithmById("demsr:train")
    assert "dshat" in train.parameterDefinition("ARCHITECTURE").options()


def test_processing_run_on_a_layer_with_spectral_bands(provider, dems_dir, tmp_path):
    src = tmp_path / "holed.tif"
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 250, 250, 90, 90, seed=1)
    full = tmp_path / "full.tif"
    from demsr.core.raster.write import write_array

    write_array(str(full), truth, grid)
    s2 = four_band_raster(full, tmp_path / "s2.tif")
    model = tmp_path / "spec.pt"
    tiny_dshat(model, spectral=True)
    layer = QgsRasterLayer(str(src), "dem")
    assert layer.isValid()
    res = _run({"INPUT": layer, "SPECTRAL": str(s2), "MODEL": str(model), "DEVICE": "cpu",
                "OUTPUT": str(tmp_path / "out.tif"), "FILLED_MASK": str(tmp_path / "mask.tif")})
    dem, _, t = _read(res["OUTPUT"])
    _, mask, _ = _read(res["FILLED_MASK"])
    del layer  # a layer outliving QgsApplication.exitQgis() crashes the interpreter at exit
    assert t == grid.transform and np.isfinite(dem).all()
    np.testing.assert_array_equal(mask == 1, voids)
    with pytest.raises(QgsProcessingException, match="cannot run without them"):
        _run({"INPUT": str(src), "MODEL": str(model), "OUTPUT": str(tmp_path / "o2.tif"),
              "FILLED_MASK": str(tmp_path / "m2.tif")})
    assert not (tmp_path / "o2.tif").exists() and not (tmp_path / "m2.tif").exists()


def test_processing_writes_the_three_outputs_together_or_none(provider, dems_dir, tmp_path):
    """UNCERTAINTY with OUTPUT and FILLED_MASK: σ exactly on the filled cells, OUTPUT the same
    as without it; UNCERTAINTY onto INPUT, or with METHOD=model onto a coarser grid (in
    memory), refused before anything is written."""
    src = tmp_path / "holed.tif"
    _, holed, voids, _ = holed_dem(dems_dir / SAGEHEN, src, 250, 250, 80, 80, seed=4)
    out, mask, unc = (str(tmp_path / n) for n in ("out.tif", "mask.tif", "unc.tif"))
    res = _run({"INPUT": str(src), "METHOD": "fill", "OUTPUT": out, "FILLED_MASK": mask,
                "UNCERTAINTY": unc})
    assert (res["OUTPUT"], res["FILLED_MASK"], res["UNCERTAINTY"]) == (out, mask, unc)
    sigma, _, _ = _read(unc)
    _, m, _ = _read(mask)
    np.testing.assert_array_equal(np.isfinite(sigma), voids)
    np.testing.assert_array_equal(m == 1, voids)
    plain = _run({"INPUT": str(src), "METHOD": "fill", "OUTPUT": str(tmp_path / "p.tif"),
                  "FILLED_MASK": str(tmp_path / "pm.tif")})
    assert plain["UNCERTAINTY"] is None
    np.testing.assert_array_equal(_read(plain["OUTPUT"])[0], _read(out)[0])  # OUTPUT unchanged
    before = sorted(os.listdir(tmp_path))
    for params, message in (({"UNCERTAINTY": str(src)}, "UNCERTAINTY"),
                            ({"METHOD": "model", "TARGET_RESOLUTION": 20, "DEVICE": "cpu",
                              "UNCERTAINTY": str(tmp_path / "u.tif")},
                             "Choose METHOD=fill or delta")):
        with pytest.raises(QgsProcessingException, match=message):
            _run({"INPUT": str(src), "OUTPUT": str(tmp_path / "o2.tif"),
                  "FILLED_MASK": str(tmp_path / "m2.tif"), **params})
        assert sorted(os.listdir(tmp_path)) == before
    np.testing.assert_array_equal(_read(src)[0], holed)                # the input is intact


def test_train_dshat_through_processing_then_repair(provider, dems_dir, tmp_path):
    import processing

    from demsr.core.nets import checkpoint
    from _model_helpers import dem_crop

    hr = tmp_path / "hr.tif"
    dem_crop(dems_dir / "longyearbyen_1995_20m_xdem.tif", hr, 300, 300, 110)
    model = str(tmp_path / "vr.pt")
    res = processing.run("demsr:train", {
        "INPUT": [str(hr)], "ARCHITECTURE": "dshat", "SCALE": 2, "PATCH_SIZE": 16, "EPOCHS": 1,
        "BATCH_SIZE": 2, "VALIDATION": 0.25, "DEVICE": "cpu", "STEPS_PER_EPOCH": 2,
        "OUTPUT_MODEL": model})
    assert res["BEST_EPOCH"] == 1 and os.path.exists(model) and os.path.exists(res["METRICS_CSV"])
    ck = checkpoint.load(model)
    assert ck.architecture == "dshat" and ck.provenance["factors"] == [1, 2]
    assert ck.provenance["gradient_weight"] == 0.10 and ck.provenance["l1_weight"] == 0.85
    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 60, 70)
    out = _run({"INPUT": str(src), "MODEL": model, "TARGET_RESOLUTION": 6.4, "DEVICE": "cpu",
                "OUTPUT": "TEMPORARY_OUTPUT", "FILLED_MASK": "TEMPORARY_OUTPUT"})
    dem, _, t = _read(out["OUTPUT"])
    assert t.a == 6.4 and dem.shape == (round(60 * 10 / 6.4), round(70 * 10 / 6.4))
    assert np.isfinite(dem).all()



@pytest.mark.slow
def test_qgis_process_repairs_with_the_bundled_model(qgis_process, dems_dir, tmp_path):
    """The README call through the installed plugin and its bundled model, ×1.5625."""
    src = tmp_path / "alos.tif"
    _, _, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 300, 300, 64, 64, seed=2,
                                  pixel_size=12.5)
    out, mask = tmp_path / "out.tif", tmp_path / "mask.tif"
    proc = qgis_process("--json", "run", "demsr:voidrepair", "--", f"INPUT={src}",
                         "TARGET_RESOLUTION=8", f"OUTPUT={out}", f"FILLED_MASK={mask}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    payload = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert payload["results"]["OUTPUT"] == str(out)
    assert payload["results"]["FILLED_MASK"] == str(mask)
    dem, _, t = _read(out)
    _, m, _ = _read(mask)
    assert dem.shape == (100, 100) and (t.a, t.e) == (8.0, -8.0) and np.isfinite(dem).all()
    assert 0 < (m == 1).sum() and set(np.unique(m)) <= {0, 1}


@pytest.mark.slow
def test_qgis_process_reports_a_channel_mismatch(qgis_process, dems_dir, tmp_path):
    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 300, 300, 48, 48)
    proc = qgis_process("run", "demsr:voidrepair", "--", f"INPUT={src}", f"SPECTRAL={src}",
                         f"OUTPUT={tmp_path / 'o.tif'}", f"FILLED_MASK={tmp_path / 'm.tif'}")
    assert proc.returncode != 0
    assert "terrain channels only" in proc.stdout + proc.stderr
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.slow
def test_qgis_process_fills_voids_from_an_auxiliary_dem(qgis_process, dems_dir, tmp_path):
    """A second DEM of the area in another CRS (WGS 84), 3× coarser and 7 m off: METHOD=auto
    takes it (delta surface fill), the mask says which cells came from it; METHOD=delta
    without it is refused with advice and leaves nothing."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    src = tmp_path / "holed.tif"
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 200, 200, 150, 150, seed=3)
    aux = tmp_path / "aux_wgs84.tif"
    with rasterio.open(dems_dir / SAGEHEN) as ds:
        dt, w, h = calculate_default_transform(ds.crs, "EPSG:4326", ds.width // 3,
                                               ds.height // 3, *ds.bounds)
        geo = np.full((h, w), np.nan, np.float32)
        reproject(read_band(ds, 1) - 7.0, geo, src_transform=ds.transform, src_crs=ds.crs,
                  dst_transform=dt, dst_crs="EPSG:4326", resampling=Resampling.average,
                  src_nodata=np.nan, dst_nodata=np.nan)
    with rasterio.open(aux, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                       crs="EPSG:4326", transform=dt, nodata=np.nan) as out:
        out.write(geo, 1)
    out, mask, unc = tmp_path / "out.tif", tmp_path / "mask.tif", tmp_path / "unc.tif"
    proc = qgis_process("run", "demsr:voidrepair", "--", f"INPUT={src}", f"AUXILIARY={aux}",
                        f"OUTPUT={out}", f"FILLED_MASK={mask}", f"UNCERTAINTY={unc}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Method: delta surface fill (METHOD=auto" in proc.stdout + proc.stderr
    dem, _, _ = _read(out)
    _, m, _ = _read(mask)
    assert (m[voids] == 2).mean() > 0.99 and np.array_equal(dem[~voids], truth[~voids])
    sigma, _, _ = _read(unc)       # UNCERTAINTY with them, on the filled cells, styled
    np.testing.assert_array_equal(np.isfinite(sigma), voids)
    assert (tmp_path / "unc.qml").exists()
    fill_out = tmp_path / "fill.tif"
    proc = qgis_process("run", "demsr:voidrepair", "--", f"INPUT={src}", "METHOD=fill",
                        f"OUTPUT={fill_out}", f"FILLED_MASK={tmp_path / 'fm.tif'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rmse = lambda d: float(np.sqrt(np.mean((d[voids] - truth[voids]) ** 2)))  # noqa: E731
    assert rmse(dem) < 0.7 * rmse(_read(fill_out)[0])
    proc = qgis_process("run", "demsr:voidrepair", "--", f"INPUT={src}", "METHOD=delta",
                        f"OUTPUT={tmp_path / 'x.tif'}", f"FILLED_MASK={tmp_path / 'xm.tif'}")
    assert proc.returncode != 0
    assert "give it as AUXILIARY" in proc.stdout + proc.stderr
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "xm.tif").exists()
