"""Evaluate DEM with an UNCERTAINTY raster: the calibration figures on a synthetic case whose
error distribution is known, in the result, the JSON and the HTML report."""
import json
import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from demsr.core.errors import DemSrError
from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
from demsr.core.raster.grid import Grid
from demsr.core.raster.write import write_array


@pytest.fixture
def case(tmp_path):
    """A smooth reference, a result = reference + Gaussian error of a known σ per cell (1 m
    on the west 90 % of the columns, 4 m on the east 10 %), and that σ as the UNCERTAINTY."""
    rng = np.random.default_rng(11)
    h, w = 300, 400
    y, x = np.mgrid[0:h, 0:w]
    ref = (200 + 30 * np.sin(x / 40) * np.cos(y / 55)).astype(np.float32)
    sigma = np.where(x >= 0.9 * w, 4.0, 1.0).astype(np.float32)
    res = (ref + rng.normal(0, sigma)).astype(np.float32)
    grid = Grid(Affine(5, 0, 300000, 0, -5, 4000000), w, h, CRS.from_epsg(32633))
    paths = {}
    for name, data in (("ref", ref), ("res", res), ("sigma", sigma)):
        paths[name] = str(tmp_path / f"{name}.tif")
        write_array(paths[name], data, grid)
    return paths


def test_share_within_sigma_and_error_against_sigma(case, tmp_path):
    html, js = str(tmp_path / "r.html"), str(tmp_path / "m.json")
    out = evaluate(EvaluationRequest(case["res"], case["ref"], uncertainty_path=case["sigma"],
                                     output_html=html, output_json=js))
    cal = out.calibration
    assert cal.n == 300 * 400
    assert cal.within_1 == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.005)
    assert cal.within_2 == pytest.approx(math.erf(2 / math.sqrt(2)), abs=0.004)
    # the least certain tenth is the 4 m strip: RMSE 4 against sqrt(0.9·1 + 0.1·16) overall
    assert cal.top10_ratio == pytest.approx(4 / math.sqrt(0.9 + 1.6), rel=0.03)
    assert [round(b["rms_sigma"], 3) for b in cal.bins] == [1.0] * 9 + [4.0]
    for b in cal.bins:
        assert b["rmse"] == pytest.approx(b["rms_sigma"], rel=0.05)
    saved = json.load(open(js))["uncertainty"]
    assert saved["within_1"] == pytest.approx(cal.within_1)
    text = open(html, encoding="utf-8").read()
    assert "<h2>Uncertainty</h2>" in text and "r_files/uncertainty.png" in text
    assert (tmp_path / "r_files" / "uncertainty.png").stat().st_size > 10_000


def test_a_too_small_sigma_is_seen(case, tmp_path):
    half = str(tmp_path / "half.tif")
    import rasterio

    with rasterio.open(case["sigma"]) as ds:
        data, grid = ds.read(1) / 2, Grid(ds.transform, ds.width, ds.height, ds.crs)
    write_array(half, data.astype(np.float32), grid)
    cal = evaluate(EvaluationRequest(case["res"], case["ref"], uncertainty_path=half)).calibration
    assert cal.within_1 == pytest.approx(math.erf(0.5 / math.sqrt(2)), abs=0.005)  # 38 %
    assert evaluate(EvaluationRequest(case["res"], case["ref"])).calibration is None


def test_negative_sigma_and_same_file_are_refused(case, tmp_path):
    neg = str(tmp_path / "neg.tif")
    import rasterio

    with rasterio.open(case["sigma"]) as ds:
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
        write_array(neg, -ds.read(1), grid)
    with pytest.raises(DemSrError, match="negative"):
        evaluate(EvaluationRequest(case["res"], case["ref"], uncertainty_path=neg))
    with pytest.raises(DemSrError, match="same file"):
        evaluate(EvaluationRequest(case["res"], case["ref"], uncertainty_path=case["sigma"],
                                   output_error=case["sigma"]))
