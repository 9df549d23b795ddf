"""Evaluate DEM core on real DEM crops with known answers."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from demsr.core.errors import DemSrError
from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
from demsr.core.evaluation.metrics import (PooledSquaredError, circular_rmse, compare, ssim,
                                           stream_agreement)
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array
from demsr.core.raster.degrade import degrade_raster

LIDAR = "oso_landslide_lidar_1.83m.tif"     # projected, no nodata in this window
WINDOW = (200, 300, 160, 160)


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), Grid(ds.transform, ds.width, ds.height, ds.crs)


def _write_like(path, data, grid):
    write_array(str(path), data.astype(np.float32), grid)
    return str(path)


@pytest.fixture
def dem(crop):
    return str(crop(LIDAR, *WINDOW))


def test_identical_inputs_give_zero_error_ssim_one_and_streams_one(dem, tmp_path):
    r = evaluate(EvaluationRequest(dem, dem, output_table=str(tmp_path / "t.csv")))
    m = r.headline
    for key in ("rmse", "mae", "bias", "p95", "max_abs", "slope_rmse", "aspect_rmse",
                "profile_curvature_rmse", "plan_curvature_rmse"):
        assert m[key] == 0.0, key
    assert m["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert m["psnr"] == math.inf
    assert m["stream_recall"] == 1.0 and m["stream_precision"] == 1.0
    assert m["n"] == 160 * 160
    assert r.alignment.startswith("same grid")
    assert "all,dem" not in (tmp_path / "t.csv").read_text()  # named after the file
    assert (tmp_path / "t.csv").read_text().splitlines()[1].startswith("all,crop_")


def test_constant_offset_gives_that_bias_and_rmse(dem, tmp_path):
    data, grid = _read(dem)
    shifted = _write_like(tmp_path / "shift.tif", data + 1.25, grid)
    m = evaluate(EvaluationRequest(shifted, dem)).headline
    assert m["bias"] == pytest.approx(1.25, abs=1e-4)
    assert m["rmse"] == pytest.approx(1.25, abs=1e-4)
    assert m["mae"] == pytest.approx(1.25, abs=1e-4)
    assert m["max_abs"] == pytest.approx(1.25, abs=1e-4)
    assert m["slope_rmse"] < 1e-3          # an offset does not change the terrain
    assert m["stream_recall"] == 1.0
    # the reverse comparison flips the bias sign
    assert evaluate(EvaluationRequest(dem, shifted)).headline["bias"] == pytest.approx(-1.25,
                                                                                       abs=1e-4)


def test_known_tilt_gives_the_slope_error_gdal_slope_gives(dem, tmp_path):
    """A plane added to a real DEM: our SLOPE_RMSE equals the RMSE of gdaldem slope's
    difference (an independent implementation) on interior cells."""
    data, grid = _read(dem)
    cols = np.arange(grid.width)[None, :] * grid.res[0]
    tilted = _write_like(tmp_path / "tilt.tif", data + 0.1 * cols, grid)  # 0.1 m/m east
    m = evaluate(EvaluationRequest(tilted, dem)).headline
    slopes = []
    for p in (tilted, dem):
        out = str(tmp_path / (Path(p).stem + "_slope.tif"))
        gdal.DEMProcessing(out, p, "slope", computeEdges=False)
        slopes.append(_read(out)[0])
    diff = (slopes[0] - slopes[1])[1:-1, 1:-1]
    expected = float(np.sqrt(np.nanmean(diff.astype(np.float64) ** 2)))
    assert expected > 1.0                       # the tilt matters
    assert m["slope_rmse"] == pytest.approx(expected, rel=0.03)


def test_tilt_of_a_flat_surface_is_exactly_its_angle(dem, tmp_path):
    _, grid = _read(dem)
    flat = np.full((grid.height, grid.width), 100.0)
    cols = np.arange(grid.width)[None, :] * grid.res[0]
    a = _write_like(tmp_path / "flat.tif", flat, grid)
    b = _write_like(tmp_path / "tilt.tif", flat + math.tan(math.radians(10)) * cols, grid)
    m = evaluate(EvaluationRequest(b, a)).headline
    assert m["slope_rmse"] == pytest.approx(10.0, abs=1e-3)


def test_circular_aspect_and_pooled_rmse():
    assert circular_rmse(np.array([359.0]), np.array([1.0])) == pytest.approx(2.0)
    assert circular_rmse(np.array([10.0, 350.0]), np.array([350.0, 10.0])) == pytest.approx(20)
    a = PooledSquaredError(np.array([1.0, 2.0]), np.array([0.0, 0.0]), np.array([True, True]))
    b = PooledSquaredError(np.array([3.0]), np.array([0.0]), np.array([True]))
    assert (a + b).rmse == pytest.approx(math.sqrt((1 + 4 + 9) / 3))
    hole = PooledSquaredError(np.array([np.nan, 1.0]), np.zeros(2), np.array([True, True]))
    assert hole.rmse == math.inf                # a cell that should be filled is not


def test_stream_agreement_within_one_cell():
    ref = np.zeros((20, 20), np.uint8)
    ref[:, 10] = 1
    assert stream_agreement(ref, ref) == (1.0, 1.0)
    one = np.roll(ref, 1, axis=1)                  # one cell off: still reproduced
    assert stream_agreement(one, ref) == (1.0, 1.0)
    three = np.roll(ref, 3, axis=1)
    assert stream_agreement(three, ref) == (0.0, 0.0)
    extra = ref.copy()
    extra[:, 15] = 1                               # a false stream halves precision
    assert stream_agreement(extra, ref) == (1.0, 0.5)


def test_ssim_with_nodata_ignores_it(dem):
    data, _ = _read(dem)
    assert ssim(data, data, 50.0) == pytest.approx(1.0)
    holed = data.copy()
    holed[40:60, 40:60] = np.nan
    valid = np.isfinite(holed)
    assert ssim(np.where(valid, holed, -9999), np.where(valid, data, 5000), 50.0,
                valid) == pytest.approx(1.0)


def test_finer_reference_is_area_averaged_onto_the_result_grid(dem, tmp_path):
    """The result is the block mean ×2 of the reference: GDAL 'average' onto its grid gives
    that block mean back, so the error vanishes."""
    lr = str(tmp_path / "lr.tif")
    degrade_raster(dem, lr, 2, "blockmean")
    r = evaluate(EvaluationRequest(lr, dem))
    assert "average" in r.alignment
    assert r.headline["rmse"] < 1e-4
    assert r.headline["n"] == 80 * 80
    # the other way round: the 2 m result onto the 1 m reference grid (bilinear) is not exact
    r2 = evaluate(EvaluationRequest(lr, dem, align="result_to_reference"))
    assert "bilinear" in r2.alignment and r2.headline["rmse"] > 0.01
    assert r2.grid.res == _read(dem)[1].res


def test_reference_in_another_crs(dem, tmp_path):
    ref = str(tmp_path / "ref_4326.tif")
    gdal.Warp(ref, dem, dstSRS="EPSG:4326", resampleAlg="bilinear")
    r = evaluate(EvaluationRequest(dem, ref))
    assert "bilinear" in r.alignment or "average" in r.alignment
    # two resamplings of lidar: small but not zero, far below the relief
    assert 0 < r.headline["rmse"] < 0.5
    assert r.headline["n"] > 0.8 * 160 * 160


def test_classical_baselines_equal_the_super_resolve_engine(dem, tmp_path):
    """COMPARE_CLASSICAL's Lanczos row is what the engine gives from the block mean (the
    scripts' way: degrade_raster, superresolve, compare)."""
    r = evaluate(EvaluationRequest(dem, dem, compare_classical=True, classical_factor=2))
    lr, out = str(tmp_path / "lr.tif"), str(tmp_path / "lz.tif")
    src, hr = degrade_raster(dem, lr, 2, "blockmean")
    superresolve(SuperResolveRequest(lr, out, scale=2, method="lanczos"))
    expected = compare(_read(out)[0], hr, *src.grid.res)
    got = r.metrics["all"]["GDAL lanczos (block mean ×2)"]
    assert got["rmse"] == pytest.approx(expected.rmse, rel=1e-6)
    assert got["slope_rmse"] == pytest.approx(expected.slope_rmse, rel=1e-3)
    assert {"GDAL cubic (block mean ×2)", "GDAL cubicspline (block mean ×2)"} <= set(r.names)
    # non-integer factor: area average, still on the evaluation grid's cells
    r15 = evaluate(EvaluationRequest(dem, dem, compare_classical=True, classical_factor=1.5))
    assert r15.metrics["all"]["GDAL lanczos (area average ×1.5)"]["rmse"] > 0
    assert not any("resampled onto it" in w for w in r15.warnings)


def test_filled_mask_splits_inside_and_outside_voids(dem, tmp_path):
    data, grid = _read(dem)
    filled = np.zeros(data.shape, np.float32)
    filled[50:90, 60:100] = 1
    result = np.where(filled == 1, data + 2.0, data)
    res = _write_like(tmp_path / "res.tif", result, grid)
    fm = _write_like(tmp_path / "mask.tif", filled, grid)
    r = evaluate(EvaluationRequest(res, dem, filled_mask_path=fm))
    assert r.metrics["inside voids"][r.names[0]]["rmse"] == pytest.approx(2.0, abs=1e-4)
    assert r.metrics["outside voids"][r.names[0]]["rmse"] == 0.0
    assert r.pixels["inside voids"] == 40 * 40


def test_mask_polygon_and_extent_restrict_the_cells(dem):
    _, grid = _read(dem)
    x0, y0, x1, y1 = grid.bounds
    rx = grid.res[0]
    extent = (x0, y1 - 50 * rx, x0 + 40 * rx, y1)     # top-left 40×50 cells
    r = evaluate(EvaluationRequest(dem, dem, extent=extent))
    assert r.headline["n"] == 40 * 50
    tri = {"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x0, y1), (x0, y0)]]}
    r = evaluate(EvaluationRequest(dem, dem, mask_geometries=[tri], mask_crs=grid.crs.to_wkt()))
    assert abs(r.headline["n"] - 160 * 160 / 2) < 200


def test_bad_input_fails_clearly_before_work(crop, tmp_path, dem):
    far = str(crop(LIDAR, 0, 0, 50, 50))
    with pytest.raises(DemSrError, match="do not overlap"):
        evaluate(EvaluationRequest(far, dem))
    data, grid = _read(dem)
    empty = _write_like(tmp_path / "empty.tif", np.full(data.shape, np.nan), grid)
    with pytest.raises(DemSrError, match="nodata everywhere"):
        evaluate(EvaluationRequest(dem, empty))
    x0, y0, x1, y1 = grid.bounds
    with pytest.raises(DemSrError, match="outside the area"):
        evaluate(EvaluationRequest(dem, dem, extent=(x1 + 100, y0, x1 + 200, y1)))
    # a CRS PROJ cannot transform into the DEM's (an engineering CRS)
    local = str(tmp_path / "local.tif")
    gdal.Translate(local, dem, outputSRS='LOCAL_CS["site grid",UNIT["metre",1]]')
    with pytest.raises(DemSrError, match="CRS"):
        evaluate(EvaluationRequest(dem, local))


def test_html_report_references_images_that_exist(dem, tmp_path):
    data, grid = _read(dem)
    other = _write_like(tmp_path / "other.tif", data + np.random.default_rng(0).normal(
        0, 0.2, data.shape), grid)
    html_path = tmp_path / "report.html"
    r = evaluate(EvaluationRequest(other, dem, compare_paths=[dem], output_html=str(html_path),
                                   output_error=str(tmp_path / "err.tif"),
                                   output_json=str(tmp_path / "m.json"), window_size=64))
    text = html_path.read_text()
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) >= 5
    for img in images:
        f = tmp_path / img
        assert f.is_file() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", img
    assert "★" in text and "PSNR peak" in text
    err, egrid = _read(tmp_path / "err.tif")
    assert np.nanmax(np.abs(err - (_read(other)[0] - data))) < 1e-5
    import json
    js = json.loads((tmp_path / "m.json").read_text())
    assert js["metrics"]["all"]["other"]["rmse"] == pytest.approx(r.headline["rmse"])
    assert js["psnr_peak_m"] == pytest.approx(float(np.nanmax(data) - np.nanmin(data)))
