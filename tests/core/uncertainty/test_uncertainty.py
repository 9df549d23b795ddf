"""UNCERTAINTY of Super-resolve DEM: tiles agree, calibrated on a held-out DEM, larger where
the model is out of its domain, written with OUTPUT or not at all; the calibration figures
on errors of a known distribution."""
import math
import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from demsr.core.errors import Cancelled, DemSrError
from demsr.core.evaluation.calibration import calibration
from demsr.core.monitor import Monitor
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
from demsr.core.raster.grid import Grid
from demsr.core.raster.write import write_array
from demsr.core.raster.warp import area_average


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1, masked=True).filled(np.nan).astype(np.float64)


def _lr(hr, transform, factor, path, crs="EPSG:32632"):
    """The HR array area-averaged onto a grid `factor` times coarser (what a coarser sensor
    sees), written to `path`."""
    h, w = hr.shape[0] // factor, hr.shape[1] // factor
    lr = area_average(hr[:h * factor, :w * factor].astype(np.float32), transform, (h, w),
                      transform * Affine.scale(factor))
    grid = Grid(transform * Affine.scale(factor), w, h, CRS.from_user_input(crs))
    write_array(str(path), lr, grid)
    return hr[:h * factor, :w * factor]


def _run(src, out, unc, **kw):
    kw.setdefault("scale", 2)
    return superresolve(SuperResolveRequest(str(src), str(out), method="model", device="cpu",
                                            uncertainty_path=str(unc) if unc else None, **kw))


@pytest.mark.parametrize("scale", [2, 2.5])
def test_tiled_uncertainty_equals_untiled_and_output_is_unchanged(crop, tmp_path, scale):
    src = crop("flopy_sagehen_10m.tif", 0, 0, 150, 170)  # has nodata
    _run(src, tmp_path / "t.tif", tmp_path / "tu.tif", scale=scale, tile_size=64)
    _run(src, tmp_path / "w.tif", tmp_path / "wu.tif", scale=scale, tile_size=4096)
    _run(src, tmp_path / "plain.tif", None, scale=scale, tile_size=64)
    tiled, whole = _read(tmp_path / "tu.tif"), _read(tmp_path / "wu.tif")
    assert np.array_equal(np.isnan(tiled), np.isnan(whole))
    assert np.array_equal(np.isnan(tiled), np.isnan(_read(tmp_path / "t.tif")))
    ok = np.isfinite(whole)
    assert ok.mean() > 0.5 and np.nanmax(whole) > 0
    # σ follows the model's output (its spread from Lanczos), which tiles reproduce within
    # 1 mm (tests/core/pipelines/test_model_upsampler.py): the same bound here
    assert np.abs(tiled[ok] - whole[ok]).max() <= 1e-3 * 3
    # asking for UNCERTAINTY does not change OUTPUT (the model reads its own window)
    np.testing.assert_array_equal(_read(tmp_path / "t.tif"), _read(tmp_path / "plain.tif"))


def test_calibrated_on_a_held_out_dem(dems_dir, tmp_path):
    """Hawaii bathymetry (held out of training and of the fit): within the issue's band."""
    with rasterio.open(dems_dir / "marmap_hawaii_bathy.tif") as ds:
        hr = ds.read(1).astype(np.float32)
        hr = _lr(hr, ds.transform, 2, tmp_path / "lr.tif", ds.crs)
    _run(tmp_path / "lr.tif", tmp_path / "sr.tif", tmp_path / "u.tif")
    err = _read(tmp_path / "sr.tif") - hr
    cal = calibration(err, _read(tmp_path / "u.tif"))
    assert cal.n > 50_000
    assert 0.50 <= cal.within_1 <= 0.85, cal.within_1
    assert cal.within_2 > cal.within_1 + 0.1
    assert cal.top10_ratio >= 1.5, cal.top10_ratio  # the least certain tenth errs most
    assert 0.5 < cal.rms_sigma / cal.rmse < 2.0


def test_cliff_gets_larger_uncertainty_than_smooth_slope_and_flat_sea(tmp_path):
    """A smooth hillside, a 60 m sea cliff and a flat sea: the model is out of its domain at
    the cliff (a step it cannot resolve): σ there is many times the rest, as the error is."""
    y, x = np.mgrid[0:128, 0:128].astype(np.float64)
    land = 80 + 0.4 * x + 5 * np.sin(y / 9.0) * np.cos(x / 13.0)
    hr = np.where(x >= 64.3 + 3 * np.sin(y / 7.0), land, 0.0).astype(np.float32)
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    hr = _lr(hr, t, 2, tmp_path / "lr.tif")
    _run(tmp_path / "lr.tif", tmp_path / "sr.tif", tmp_path / "u.tif")
    sigma, err = _read(tmp_path / "u.tif"), _read(tmp_path / "sr.tif") - hr
    edge = np.abs(x[:, :128] - (64.3 + 3 * np.sin(y[:, :128] / 7.0))) < 3
    sea, slope = (x < 50), (x > 80)
    cliff_sigma = np.sqrt(np.mean(sigma[edge] ** 2))
    assert cliff_sigma > 5 * np.sqrt(np.mean(sigma[slope] ** 2))
    assert cliff_sigma > 5 * np.sqrt(np.mean(sigma[sea] ** 2))
    # … because the error is larger there, not by accident
    assert np.sqrt(np.mean(err[edge] ** 2)) > 5 * np.sqrt(np.mean(err[slope] ** 2))
    assert np.mean(np.abs(err[edge]) <= 2 * sigma[edge]) > 0.6


def test_classical_method_refused_and_outputs_appear_together(crop, tmp_path):
    src = crop("flopy_sagehen_10m.tif", 0, 0, 100, 100)
    with pytest.raises(DemSrError, match="METHOD=model only"):
        superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), method="lanczos",
                                         uncertainty_path=str(tmp_path / "u.tif")))
    with pytest.raises(DemSrError, match="same file"):
        _run(src, tmp_path / "o.tif", tmp_path / "o.tif")
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3
    with pytest.raises(Cancelled):
        superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), method="model",
                                         tile_size=64, uncertainty_path=str(tmp_path / "u.tif")),
                     Monitor(cancelled=cancelled))
    assert not os.path.exists(tmp_path / "o.tif") and not os.path.exists(tmp_path / "u.tif")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    res = _run(src, tmp_path / "o.tif", tmp_path / "u.tif")
    assert res.uncertainty_path == str(tmp_path / "u.tif") and res.uncertainty_seconds > 0
    assert os.path.exists(tmp_path / "o.tif") and os.path.exists(tmp_path / "u.tif")


def test_calibration_figures_on_a_known_error_distribution():
    rng = np.random.default_rng(7)
    n = 400_000
    sigma = np.where(np.arange(n) < n * 0.9, 1.0, 3.0)  # the top tenth 3× less certain
    err = rng.normal(0.0, sigma)
    cal = calibration(err, sigma)
    assert cal.within_1 == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.004)  # 0.683
    assert cal.within_2 == pytest.approx(math.erf(2 / math.sqrt(2)), abs=0.003)  # 0.954
    assert cal.top10_ratio == pytest.approx(3 / math.sqrt(0.9 + 0.1 * 9), rel=0.01)
    assert cal.bins[-1]["rms_sigma"] == pytest.approx(3.0)
    assert cal.bins[-1]["rmse"] == pytest.approx(3.0, rel=0.02)
    # Laplace errors with σ = their standard deviation: 1 − exp(−√2) within 1σ, not 68 %
    lap = rng.laplace(0.0, 1 / math.sqrt(2), n)
    assert calibration(lap, np.ones(n)).within_1 == pytest.approx(1 - math.exp(-math.sqrt(2)),
                                                                   abs=0.004)
    # σ twice too small: the share within 1σ is that of 0.5σ
    assert calibration(err, sigma / 2).within_1 == pytest.approx(math.erf(0.5 / math.sqrt(2)),
                                                                abs=0.004)
    with pytest.raises(ValueError):
        calibration(err, -sigma)


def test_a_mosaic_refuses_uncertainty(crop, tmp_path):
    from demsr.core.pipelines.mosaic import MosaicRequest, run_mosaic

    src = crop("flopy_sagehen_10m.tif", 0, 0, 64, 64)
    sr = SuperResolveRequest("", "", method="model", uncertainty_path=str(tmp_path / "u.tif"))
    with pytest.raises(DemSrError, match="does not write UNCERTAINTY"):
        run_mosaic(MosaicRequest([str(src)], str(tmp_path / "out"), sr=sr))
    assert not (tmp_path / "out").exists()


def test_coefficients_between_and_beyond_the_fitted_factors(tmp_path):
    from demsr.core.uncertainty import estimate

    table = {2.0: dict.fromkeys(estimate.FEATURES, 1.0), 4.0: dict.fromkeys(estimate.FEATURES, 3.0)}
    assert estimate.coefficients_for(2 * 2 ** 0.5, table)["spread"] == pytest.approx(2.0)
    assert estimate.coefficients_for(1.1, table)["extrap"] == 1.0   # held below
    assert estimate.coefficients_for(8.0, table)["grad"] == 3.0     # and above
    shipped = estimate.load_coefficients()
    assert set(shipped["factors"]) >= {2.0, 3.0, 4.0, 8.0}
    assert not set(shipped["meta"]["fitted_on"]) & {
        "glacierflowmodel_aletsch_200m.tif", "pypi_lidar_dem_1m.tif", "marmap_hawaii_bathy.tif",
        "spatstat_bei_elev_5m_local.tif"}  # never the DEMs the figures are reported on
    broken = tmp_path / "c.json"
    broken.write_text("{\"factors\": {\"2\": {\"spread\": 1}}}")
    with pytest.raises(DemSrError, match="cannot be read"):
        estimate.load_coefficients(str(broken))
