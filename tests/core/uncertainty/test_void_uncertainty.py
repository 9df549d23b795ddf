"""UNCERTAINTY of Void repair (METHOD=fill and delta): σ exactly on the filled cells, the same
however the raster is streamed, growing with the distance into a void, calibrated on a
held-out DEM with synthetic voids, taken onto another target grid, the first fill's for
METHOD=model on the input grid (refused on its other routes), written with OUTPUT and
FILLED_MASK or not at all."""
import os

import numpy as np
import pytest
import rasterio

from demsr.core.errors import DemSrError
from demsr.core.evaluation.calibration import calibration
from demsr.core.monitor import Monitor
from demsr.core.nodata.find import MASK_AUXILIARY, MASK_FILLED, MASK_NODATA
from demsr.core.nodata.synthetic import synthetic_auxiliary
from demsr.core.pipelines import voidrepair as vr
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array
from demsr.core.uncertainty.voids import VoidSigma, load_coefficients

from _dshat_helpers import holed_dem

SAGEHEN = "flopy_sagehen_10m.tif"
ALETSCH = "glacierflowmodel_aletsch_200m.tif"   # a validation DEM (scripts/default_data.py)


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.read(1)


def _repair(tmp_path, src, name="o", **kw):
    out, mask, unc = (tmp_path / f"{name}{s}.tif" for s in ("", "_mask", "_unc"))
    res = vr.voidrepair(vr.VoidRepairRequest(str(src), str(out), str(mask),
                                             uncertainty_path=str(unc), **kw))
    return res, _read(out)[0], _read(mask)[1], _read(unc)[0]


def _aux_file(truth, grid, path, seed=1):
    aux, (f, ro, co) = synthetic_auxiliary(truth, np.random.default_rng(seed), voids=0.02)
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    write_array(str(path), aux, Grid(t, aux.shape[1], aux.shape[0], grid.crs))
    return path


def test_sigma_is_on_the_filled_cells_only_and_does_not_depend_on_blocks(tmp_path, dems_dir):
    from demsr.core.pipelines.voidfill import repair_classical
    from demsr.core.raster.io import open_dem
    from demsr.core.raster.write import atomic_outputs, gtiff_profile

    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 50, 50,
                                      300, 280, seed=5)
    aux_path = _aux_file(truth, grid, tmp_path / "aux.tif")
    src = open_dem(str(tmp_path / "holed.tif"))
    for use_aux in (False, True):
        got = []
        for block in (512, 1 << 20):
            paths = [tmp_path / f"{n}{use_aux}{block}.tif" for n in ("o", "m", "u")]
            profiles = [(str(paths[0]), gtiff_profile(grid, -9999.0)),
                        (str(paths[1]), gtiff_profile(grid, MASK_NODATA, dtype="uint8")),
                        (str(paths[2]), gtiff_profile(grid, -9999.0))]
            with atomic_outputs(profiles) as writers:
                r = repair_classical(src, open_dem(str(aux_path)) if use_aux else None, 0.0,
                                     writers, Monitor(), block_pixels=block,
                                     sigma=VoidSigma())
            got.append((_read(paths[0])[0], _read(paths[1])[1], _read(paths[2])[0]))
            assert r.uncertainty_seconds > 0
        np.testing.assert_array_equal(got[0][2], got[1][2])
        dem, mask, sigma = got[0]
        filled = (mask == MASK_FILLED) | (mask == MASK_AUXILIARY)
        assert np.array_equal(filled, voids)
        assert np.isfinite(sigma[filled]).all() and (sigma[filled] >= 0).all()
        sure = filled & (sigma == 0)        # only where the terrain around is flat (a lake)
        assert sure.sum() < 0.02 * filled.sum()
        assert np.abs(dem - truth)[sure].max(initial=0.0) < 1e-3
        assert not np.isfinite(sigma[~filled]).any()      # nodata on every cell not filled
        if use_aux:  # both kinds of cell: the auxiliary's own voids took the first fill
            assert (mask == MASK_AUXILIARY).any() and (mask == MASK_FILLED).any()


def test_sigma_grows_with_the_distance_into_a_void():
    """One round void in rough terrain: σ of the first fill rises from the rim inwards; the
    delta fill's σ is larger inside than next to the rim."""
    rng = np.random.default_rng(3)
    from scipy import ndimage

    z = np.cumsum(np.cumsum(rng.standard_normal((80, 80)), 0), 1) * 0.01
    z += ndimage.gaussian_filter(rng.standard_normal((80, 80)), 2) * 5
    yy, xx = np.mgrid[:80, :80]
    unknown = np.hypot(yy - 40, xx - 40) < 18
    d = ndimage.distance_transform_edt(unknown)[unknown]
    win = np.where(unknown, np.nan, z)
    est = VoidSigma({"fill": 1.0, "delta": 1.0})
    s = est.window(win, unknown)
    means = [s[(d >= lo) & (d < lo + 3)].mean() for lo in (1, 4, 8, 12, 15)]
    assert all(a < b for a, b in zip(means, means[1:])), means
    aux = z - ndimage.gaussian_filter(z, 3)                      # lacks the fine detail
    sd = est.window(win, unknown, aux, np.ones(int(unknown.sum()), bool))
    assert sd[d < 1.5].mean() < sd[d >= 3].mean()
    assert np.isfinite(sd).all() and np.isfinite(s).all()


def test_delta_sigma_from_the_fill_s_own_solve_is_the_sigma_computed_alone(dems_dir,
                                                                           tmp_path):
    """The delta fill carries σ's local variance across a void in its own solve (one
    factorisation for both): same values as the delta fill and σ computed apart; a field
    known on other cells is refused."""
    from demsr.core.nodata.auxiliary import delta_fill
    from demsr.core.nodata.inpaint import fill_windows

    truth, _, voids, _ = holed_dem(dems_dir / SAGEHEN, tmp_path / "h.tif", 40, 40, 120, 120,
                                   seed=4)
    rng = np.random.default_rng(5)
    from scipy import ndimage

    aux = ndimage.uniform_filter(truth, 4) + rng.standard_normal(truth.shape) * 0.5 + 30.0
    aux[:10, :30] = np.nan                     # the auxiliary's own void: first-fill cells
    z = np.where(voids, np.nan, truth)
    est = VoidSigma({"fill": 1.0, "delta": 1.0})
    v_alone, f_alone, none = delta_fill(z, aux, voids)
    v, f, across = delta_fill(z, aux, voids, est.delta_field(z, aux))
    assert none is None and f.any() and (~f).any()
    np.testing.assert_array_equal(v, v_alone)
    np.testing.assert_array_equal(f, f_alone)
    np.testing.assert_allclose(est.window(z, voids, aux, f, across),
                               est.window(z, voids, aux, f), rtol=1e-6)
    assert np.isnan(across[~f]).all() and np.isfinite(across[f]).all()
    with pytest.raises(ValueError):
        fill_windows([z, np.where(np.isfinite(aux), z, np.nan)], voids)
    # a window where the auxiliary has no data at all: first fill, no σ field, no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = np.full(z.shape, np.nan)
        v, f, across = delta_fill(z, none, voids, est.delta_field(z, none))
    assert not f.any() and np.isfinite(v).all() and np.isnan(across).all()


@pytest.mark.parametrize("method", ["fill", "delta"])
def test_calibrated_on_a_held_out_dem(tmp_path, dems_dir, method):
    """The bundled calibration (fitted on the training DEMs) on a validation DEM with the
    synthetic radar-like voids and, for delta, the synthetic auxiliary of
    scripts/evaluate_voids.py."""
    from evaluate_voids import holed_copy, write_auxiliary

    errors, sigmas = [], []
    for seed in (2026, 2027):
        hr, grid, lr_path = holed_copy(dems_dir / ALETSCH, str(tmp_path), seed)
        aux = write_auxiliary(hr, grid, str(tmp_path), seed) if method == "delta" else None
        _, dem, mask, sigma = _repair(tmp_path, lr_path, method=method, auxiliary_path=aux)
        filled = np.isin(mask, (MASK_FILLED, MASK_AUXILIARY)) & np.isfinite(hr)
        errors.append((dem - hr)[filled])
        sigmas.append(sigma[filled])
    cal = calibration(np.concatenate(errors), np.concatenate(sigmas))
    assert cal.n > 10_000
    assert 0.5 <= cal.within_1 <= 0.85, cal.within_1
    assert cal.within_1 < cal.within_2
    assert cal.top10_ratio > 1.3, cal.top10_ratio      # the largest σ mark larger errors


def test_onto_a_coarser_grid_sigma_follows_the_filled_cells(tmp_path, dems_dir):
    """Another grid (20 m for a 10 m DEM): σ of the input-grid fill taken there bilinearly,
    on the target's filled cells only."""
    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100, 120, 120, seed=6)
    res, dem, mask, sigma = _repair(tmp_path, tmp_path / "holed.tif", method="fill",
                                    target_resolution=20.0)
    assert dem.shape == sigma.shape == (60, 60)
    filled = (mask == MASK_FILLED)
    assert filled.any() and res.uncertainty_path
    assert np.isfinite(sigma[filled]).all() and not np.isfinite(sigma[~filled]).any()
    _, _, _, same = _repair(tmp_path, tmp_path / "holed.tif", "same", method="fill")
    # bilinear: within the input σ's range
    assert sigma[filled].max() <= np.nanmax(same) + 1e-6 and sigma[filled].min() >= 0


@pytest.mark.parametrize("method", ["delta", "model"])
def test_finer_grid_through_the_superresolve_engine(tmp_path, dems_dir, method):
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      64, 64, seed=6)
    aux = tmp_path / "aux.tif"
    write_array(str(aux), (truth - 4.0).astype(np.float32), grid)
    res, dem, mask, sigma = _repair(tmp_path, tmp_path / "holed.tif", method=method,
                                    auxiliary_path=str(aux) if method == "delta" else None,
                                    target_resolution=5.0, tile_size=64, device="cpu")
    assert res.method == method
    filled = (mask == MASK_FILLED) | (mask == MASK_AUXILIARY)
    assert sigma.shape == (128, 128) and filled.any()
    assert np.isfinite(sigma[filled]).all() and not np.isfinite(sigma[~filled]).any()


def test_sigma_keeps_a_negative_nodata_when_the_input_uses_zero(tmp_path, dems_dir):
    """A DEM whose nodata is 0 (some products): σ = 0 (flat terrain around a void) must not
    read as nodata, so UNCERTAINTY has its own negative nodata."""
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "h.tif", 50, 50, 80,
                                          80, seed=1)
    voids[:20, :20] = False
    holed[:20, :20] = 500.0      # a flat patch, cut by a void of its own: σ = 0 there
    voids[8:11, 8:11] = True
    holed[voids] = np.nan
    write_array(str(tmp_path / "zero.tif"), holed, grid, nodata=0.0)
    _, _, mask, sigma = _repair(tmp_path, tmp_path / "zero.tif", method="fill")
    with rasterio.open(tmp_path / "o_unc.tif") as ds:
        assert ds.nodata < 0
    filled = mask == MASK_FILLED
    assert np.array_equal(filled, voids) and np.isfinite(sigma[filled]).all()
    assert (sigma[8:11, 8:11] == 0).all() and (sigma[filled] > 0).mean() > 0.9


def test_model_on_the_input_grid_gives_the_first_fill_sigma_elsewhere_refused(tmp_path,
                                                                             dems_dir):
    """METHOD=model (the bundled DS-HAT, streamed on the input grid) corrects the first fill
    by little: its σ is the first fill's, the same cells and values as METHOD=fill's; on the
    in-memory routes UNCERTAINTY is refused before anything is written."""
    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 0, 0, 96, 96, seed=2)
    res, dem, mask, sigma = _repair(tmp_path, tmp_path / "holed.tif", "m", method="model",
                                    device="cpu")
    _, _, fmask, fsigma = _repair(tmp_path, tmp_path / "holed.tif", "f", method="fill")
    assert res.method == "model" and res.uncertainty_path and (mask == MASK_FILLED).any()
    np.testing.assert_array_equal(mask, fmask)
    np.testing.assert_array_equal(sigma, fsigma)
    before = sorted(os.listdir(tmp_path))
    for kw in (dict(method="model", in_memory=True),
               dict(method="model", target_resolution=20.0)):   # coarser: in memory
        with pytest.raises(DemSrError, match="Choose METHOD=fill or delta"):
            _repair(tmp_path, tmp_path / "holed.tif", "x", device="cpu", **kw)
        assert sorted(os.listdir(tmp_path)) == before


def test_outputs_appear_together_and_never_onto_an_input(tmp_path, dems_dir):
    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 0, 0, 64, 64, seed=2)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(DemSrError, match="UNCERTAINTY"):     # an output onto the input
        vr.voidrepair(vr.VoidRepairRequest(str(tmp_path / "holed.tif"), str(tmp_path / "o.tif"),
                                           str(tmp_path / "m.tif"),
                                           uncertainty_path=str(tmp_path / "holed.tif")))
    assert sorted(os.listdir(tmp_path)) == before
    res, _, _, _ = _repair(tmp_path, tmp_path / "holed.tif")
    assert res.method == "fill"
    assert {"o.tif", "o_mask.tif", "o_unc.tif"} <= set(os.listdir(tmp_path))


def test_bundled_calibration_says_what_it_was_fitted_on():
    data = load_coefficients()
    assert set(data["k"]) == {"fill", "delta"} and all(v > 0 for v in data["k"].values())
    from default_data import TRAIN, VALIDATION

    assert set(data["meta"]["fitted_on"]) <= set(TRAIN)
    assert not set(data["meta"]["fitted_on"]) & set(VALIDATION)
    assert "scripts/uncertainty.py voids fit" in data["meta"]["made_by"]


def test_evaluate_calibrates_void_repair_sigma_over_the_filled_cells_without_a_warning(
        tmp_path, dems_dir):
    """Evaluate DEM with Void repair's FILLED_MASK and UNCERTAINTY: σ is nodata outside the
    voids by design, so the calibration is over the filled cells and nothing is warned; a σ
    raster with holes inside the voids still is."""
    from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate

    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 50, 50,
                                      200, 200, seed=3)
    write_array(str(tmp_path / "truth.tif"), truth, grid)
    res, _, mask, sigma = _repair(tmp_path, tmp_path / "holed.tif", method="fill")
    req = EvaluationRequest(str(tmp_path / "o.tif"), str(tmp_path / "truth.tif"),
                            filled_mask_path=str(tmp_path / "o_mask.tif"),
                            uncertainty_path=str(tmp_path / "o_unc.tif"))
    got = evaluate(req)
    assert got.calibration.n == res.filled_pixels > 0
    assert not [w for w in got.warnings if "uncertainty" in w.lower()], got.warnings
    holed = sigma.copy()
    holed[np.argwhere(np.isfinite(holed))[0][0], np.argwhere(np.isfinite(holed))[0][1]] = np.nan
    write_array(str(tmp_path / "unc2.tif"), holed, grid)
    got = evaluate(EvaluationRequest(str(tmp_path / "o.tif"), str(tmp_path / "truth.tif"),
                                     filled_mask_path=str(tmp_path / "o_mask.tif"),
                                     uncertainty_path=str(tmp_path / "unc2.tif")))
    assert got.calibration.n == res.filled_pixels - 1
    assert any("nodata on" in w for w in got.warnings), got.warnings
