"""demsr:train through processing.run, and its model used by demsr:superresolve."""
import csv
import os

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402,F401 - `make test` installs it; a missing torch must fail

from demsr.core.nets import checkpoint  # noqa: E402


def _crop(dems_dir, path, size=200):
    from demsr.core.raster.grid import Grid
    from demsr.core.raster.io import read_band
    from demsr.core.raster.write import write_array

    with rasterio.open(dems_dir / "oso_landslide_lidar_1.83m.tif") as ds:
        data = read_band(ds, 1)[300:300 + size, 400:400 + size]
        grid = Grid(ds.transform * ds.transform.translation(400, 300), size, size, ds.crs)
    write_array(str(path), data, grid)


def test_train_then_superresolve(provider, dems_dir, tmp_path):
    import processing

    hr = tmp_path / "hr.tif"
    _crop(dems_dir, hr)
    model = str(tmp_path / "mine.pt")
    res = processing.run("demsr:train", {
        "INPUT": [str(hr)], "ARCHITECTURE": "fast", "SCALE": 2, "PATCH_SIZE": 16, "EPOCHS": 1,
        "BATCH_SIZE": 4, "LEARNING_RATE": 1e-3, "DEGRADATION": "blockmean", "VALIDATION": 0.25,
        "DEVICE": "cpu", "STEPS_PER_EPOCH": 3, "OUTPUT_MODEL": model})
    assert res["OUTPUT_MODEL"] == model and os.path.exists(model)
    assert res["VAL_RMSE_MODEL"] > 0 and res["VAL_RMSE_BASELINE"] > 0
    with open(res["METRICS_CSV"]) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # the kept model is the best on validation, the starting model (epoch 0) included
    best = min(rows, key=lambda r: float(r["val_ratio"]))
    assert res["BEST_EPOCH"] == int(best["epoch"])
    assert res["VAL_RMSE_MODEL"] == pytest.approx(float(best["val_rmse"]), rel=1e-6)
    assert os.path.exists(res["CURVES_PNG"])
    page = open(res["REPORT_HTML"], encoding="utf-8").read()   # the curves, reachable
    assert os.path.basename(res["CURVES_PNG"]) in page and f"epoch {best['epoch']}" in page
    ck = checkpoint.load(model)
    assert ck.provenance["data"] == ["hr.tif"] and ck.scale == 2

    out = str(tmp_path / "sr.tif")
    processing.run("demsr:superresolve", {"INPUT": str(hr), "SCALE": 2, "METHOD": "model",
                                          "MODEL": model, "DEVICE": "cpu", "OUTPUT": out})
    with rasterio.open(out) as ds, rasterio.open(hr) as src:
        sr = ds.read(1, masked=True)
        assert (ds.width, ds.height) == (2 * src.width, 2 * src.height)
        assert ds.transform.a == pytest.approx(src.transform.a / 2)
    assert sr.count() > 0.9 * sr.size and np.isfinite(sr.compressed()).all()


def test_foreign_model_is_refused_with_a_message(provider, tmp_path, dems_dir):
    import processing
    from qgis.core import QgsProcessingException

    hr = tmp_path / "hr.tif"
    _crop(dems_dir, hr, 80)
    bad = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, str(bad))
    with pytest.raises(QgsProcessingException, match="not a DEM SR model"):
        processing.run("demsr:superresolve", {"INPUT": str(hr), "SCALE": 2, "METHOD": "model",
                                              "MODEL": str(bad), "OUTPUT": str(tmp_path / "o.tif")})


def test_export_only_writes_the_config_that_distributed_training_reads(provider, dems_dir,
                                                                        tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    from demsr.core.training.config import SRTrainConfig
    from demsr.core.training.config_file import load_config

    hr = tmp_path / "hr.tif"
    _crop(dems_dir, hr)
    model, cfg_path = str(tmp_path / "server.pt"), str(tmp_path / "run.json")
    params = {"INPUT": [str(hr)], "ARCHITECTURE": "gisr", "SCALE": 4, "PATCH_SIZE": 32,
              "EPOCHS": 7, "BATCH_SIZE": 64, "DEVICE": "cuda", "SEED": 5,
              "OUTPUT_MODEL": model, "EXPORT_CONFIG": cfg_path, "EXPORT_ONLY": True}
    res = processing.run("demsr:train", params)
    assert res["EXPORT_CONFIG"] == cfg_path and not os.path.exists(model)  # nothing trained
    cfg = load_config(cfg_path)
    assert isinstance(cfg, SRTrainConfig) and cfg.inputs == [str(hr)]
    assert (cfg.architecture, cfg.scale, cfg.patch_size, cfg.epochs, cfg.batch_size,
            cfg.device, cfg.seed, cfg.output_model) == ("gisr", 4, 32, 7, 64, "cuda", 5, model)
    with pytest.raises(QgsProcessingException, match="EXPORT_ONLY needs EXPORT_CONFIG"):
        processing.run("demsr:train", dict(params, EXPORT_CONFIG=None))
    with pytest.raises(QgsProcessingException, match="multiple of the scale"):
        processing.run("demsr:train", dict(params, PATCH_SIZE=30,
                                           EXPORT_CONFIG=str(tmp_path / "bad.json")))
    assert not (tmp_path / "bad.json").exists()


def test_train_at_a_non_integer_factor_then_superresolve_at_it(provider, dems_dir, tmp_path):
    """SCALE=2.5: the model records ×2.5, runs there, and is refused elsewhere with its range."""
    import processing
    from qgis.core import QgsProcessingException

    hr = tmp_path / "hr.tif"
    _crop(dems_dir, hr, 160)
    model = str(tmp_path / "x25.pt")
    res = processing.run("demsr:train", {
        "INPUT": [str(hr)], "ARCHITECTURE": "fast", "SCALE": 2.5, "PATCH_SIZE": 20,
        "EPOCHS": 1, "BATCH_SIZE": 4, "LEARNING_RATE": 1e-3, "VALIDATION": 0.25,
        "DEVICE": "cpu", "STEPS_PER_EPOCH": 3, "OUTPUT_MODEL": model})
    assert res["OUTPUT_MODEL"] == model and res["VAL_RMSE_BASELINE"] > 0
    ck = checkpoint.load(model)
    assert ck.scale == 3 and ck.provenance["factors"] == [2.5, 2.5]
    assert ck.provenance["finish"] == "average"

    lr = tmp_path / "lr.tif"
    _crop(dems_dir, lr, 64)
    out = str(tmp_path / "sr.tif")
    processing.run("demsr:superresolve", {"INPUT": str(lr), "SCALE": 2.5, "METHOD": "model",
                                          "MODEL": model, "DEVICE": "cpu", "OUTPUT": out})
    with rasterio.open(out) as ds, rasterio.open(lr) as src:
        sr = ds.read(1, masked=True)
        assert (ds.width, ds.height) == (160, 160)
        assert ds.transform.a == pytest.approx(src.transform.a / 2.5)
    assert sr.count() == sr.size and np.isfinite(sr.compressed()).all()
    # within a few metres of the input's relief: an elevation surface, not noise
    assert abs(float(sr.mean()) - float(rasterio.open(lr).read(1).mean())) < 1.0
    with pytest.raises(QgsProcessingException, match=r"covers factors ×2\.5 \(model ×3\).*"
                                                     r"×3 finer"):
        processing.run("demsr:superresolve", {"INPUT": str(lr), "SCALE": 3, "METHOD": "model",
                                              "MODEL": model, "DEVICE": "cpu",
                                              "OUTPUT": str(tmp_path / "no.tif")})
    assert not (tmp_path / "no.tif").exists()


def test_auxiliary_dems_train_a_dshat_and_are_refused_for_sr_models(provider, dems_dir,
                                                                     tmp_path):
    """SYNTHETIC_AUXILIARY through Processing gives a DS-HAT that reads an auxiliary DEM (in
    its exported configuration too); with an SR architecture it is refused before work."""
    import processing
    from qgis.core import QgsProcessingException

    from demsr.core.training.config import DSHATTrainConfig
    from demsr.core.training.config_file import load_config

    hr = tmp_path / "hr.tif"
    _crop(dems_dir, hr, 120)
    params = {"INPUT": [str(hr)], "ARCHITECTURE": "dshat", "SCALE": 1, "PATCH_SIZE": 16,
              "EPOCHS": 1, "BATCH_SIZE": 2, "STEPS_PER_EPOCH": 2, "DEVICE": "cpu",
              "SYNTHETIC_AUXILIARY": True, "OUTPUT_MODEL": str(tmp_path / "aux.pt"),
              "EXPORT_CONFIG": str(tmp_path / "aux.json"), "EXPORT_ONLY": True}
    processing.run("demsr:train", params)
    cfg = load_config(str(tmp_path / "aux.json"))
    assert isinstance(cfg, DSHATTrainConfig) and cfg.synthetic_auxiliary is True
    with pytest.raises(QgsProcessingException, match="AUXILIARY and SYNTHETIC_AUXILIARY train"):
        processing.run("demsr:train", dict(params, ARCHITECTURE="fast", EXPORT_ONLY=False,
                                           EXPORT_CONFIG=None,
                                           OUTPUT_MODEL=str(tmp_path / "sr.pt")))
    assert not (tmp_path / "sr.pt").exists()
