"""UNCERTAINTY through Processing: Super-resolve DEM writes it, Evaluate DEM judges it."""
import math
import os

import pytest
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingOutputNumber


def _run(alg, params):
    import processing

    return processing.run(alg, params)


def test_declared(provider):
    sr = QgsApplication.processingRegistry().algorithmById("demsr:superresolve")
    assert sr.parameterDefinition("UNCERTAINTY").flags() & \
        sr.parameterDefinition("UNCERTAINTY").Flag.FlagOptional
    ev = QgsApplication.processingRegistry().algorithmById("demsr:evaluate")
    assert ev.parameterDefinition("UNCERTAINTY") is not None
    outs = {o.name(): o for o in ev.outputDefinitions()}
    assert isinstance(outs["WITHIN_1_SIGMA"], QgsProcessingOutputNumber)


def test_superresolve_writes_it_and_evaluate_judges_it(provider, crop, tmp_path):
    from demsr.core.raster.degrade import degrade_raster

    hr = crop("glacierflowmodel_aletsch_200m.tif", 0, 0, 200, 240)
    lr = str(tmp_path / "lr.tif")
    degrade_raster(str(hr), lr, 2)
    out, sigma = str(tmp_path / "sr.tif"), str(tmp_path / "sigma.tif")
    res = _run("demsr:superresolve", {"INPUT": lr, "SCALE": 2, "METHOD": "model",
                                      "DEVICE": "cpu", "OUTPUT": out, "UNCERTAINTY": sigma})
    assert res["UNCERTAINTY"] == sigma and os.path.exists(sigma)
    ev = _run("demsr:evaluate", {"INPUT": out, "REFERENCE": str(hr), "UNCERTAINTY": sigma,
                                 "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_TABLE": None,
                                 "OUTPUT_ERROR": None})
    assert 0.5 <= ev["WITHIN_1_SIGMA"] <= 0.85, ev["WITHIN_1_SIGMA"]
    assert ev["WITHIN_1_SIGMA"] < ev["WITHIN_2_SIGMA"] <= 1
    assert os.path.exists(tmp_path / "r_files" / "uncertainty.png")
    plain = _run("demsr:evaluate", {"INPUT": out, "REFERENCE": str(hr), "OUTPUT_HTML": None,
                                    "OUTPUT_TABLE": None, "OUTPUT_ERROR": None})
    assert math.isnan(plain["WITHIN_1_SIGMA"]) and math.isnan(plain["WITHIN_2_SIGMA"])


def test_classical_method_with_uncertainty_is_refused(provider, crop, tmp_path):
    src = crop("flopy_sagehen_10m.tif", 0, 0, 64, 64)
    with pytest.raises(QgsProcessingException, match="METHOD=model only"):
        _run("demsr:superresolve", {"INPUT": str(src), "SCALE": 2, "METHOD": "lanczos",
                                    "OUTPUT": str(tmp_path / "o.tif"),
                                    "UNCERTAINTY": str(tmp_path / "u.tif")})
    assert not os.path.exists(tmp_path / "o.tif")
