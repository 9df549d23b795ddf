"""METHOD=model at any factor a model covers: seams, exact grids, refusals, and real gain."""
import os
import subprocess

import numpy as np
import pytest
import rasterio
from affine import Affine

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.evaluation.metrics import compare  # noqa: E402
from demsr.core.nets import checkpoint, coverage  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.grid import Grid, output_grid  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.raster.warp import area_average  # noqa: E402

from _model_helpers import dem_crop, model_tiled_and_untiled, tiny_fast  # noqa: E402


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.transform, ds.crs


@pytest.fixture(scope="module")
def crop(dems_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("af") / "crop.tif"
    dem_crop(dems_dir / "flopy_sagehen_10m.tif", path, 100, 120, 90)
    return path


@pytest.fixture(scope="module")
def tiny_x4(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("m") / "m4.pt")
    checkpoint.save(checkpoint.from_model(tiny_fast(4), "torch-bicubic"), path)
    return path


@pytest.mark.parametrize("scale", [1.5625, 2.5, 3])
def test_tiled_equals_untiled_at_non_integer_factors(tmp_path, crop, tiny_x4, scale):
    whole, tiled, tiles = model_tiled_and_untiled(crop, tiny_x4, scale, tmp_path)
    assert tiles > 4
    n = int(round(90 * scale))
    assert whole.shape == (n, n) and np.isfinite(whole).all()
    np.testing.assert_allclose(tiled, whole, atol=1e-3, rtol=0)
    # the network is in the result: it differs from GDAL cubic on the same grid
    cub = str(tmp_path / "c.tif")
    superresolve(SuperResolveRequest(str(crop), cub, scale=scale, method="cubic"))
    assert np.abs(whole - _read(cub)[0]).max() > 0.01


@pytest.mark.parametrize("kw", [dict(scale=1.5625), dict(target_resolution=None)])
def test_output_grid_is_the_requested_grid_on_epsg4326(tmp_path, dems_dir, kw):
    src = tmp_path / "geo.tif"
    dem_crop(dems_dir / "demcompare_srtm_ref_3arcsec_turkey.tif", src, 300, 300, 64)
    grid = open_dem(str(src)).grid
    assert grid.is_geographic
    if "target_resolution" in kw:
        kw = dict(target_resolution=grid.res[0] / 1.5625)
    out = tmp_path / "o.tif"
    superresolve(SuperResolveRequest(str(src), str(out), method="model", device="cpu", **kw))
    want = output_grid(grid, kw.get("scale"), kw.get("target_resolution"))
    data, transform, crs = _read(out)
    assert data.shape == (want.height, want.width) == (100, 100)
    assert transform == want.transform and crs == grid.crs
    # the same grid as gdalwarp gives for that request
    ref = tmp_path / "gdal.tif"
    args = (["-ts", "100", "100"] if "scale" in kw
            else ["-tr", repr(kw["target_resolution"]), repr(kw["target_resolution"])])
    subprocess.run(["gdalwarp", "-q", *args, str(src), str(ref)], check=True)
    _, gt, gcrs = _read(ref)
    assert np.allclose(tuple(transform)[:6], tuple(gt)[:6], rtol=0, atol=1e-12) and gcrs == crs


def test_area_average_equals_gdalwarp_average(tmp_path, dems_dir):
    src = tmp_path / "hr.tif"
    hr = dem_crop(dems_dir / "glacierflowmodel_aletsch_200m.tif", src, 40, 60, 125)
    g = open_dem(str(src)).grid
    lr_t = g.transform * Affine.scale(2.5)
    ours = area_average(hr, g.transform, (50, 50), lr_t)
    ref = tmp_path / "avg.tif"
    subprocess.run(["gdalwarp", "-q", "-r", "average", "-ts", "50", "50", str(src), str(ref)],
                   check=True)
    gdal, gt, _ = _read(ref)
    assert gt.almost_equals(lr_t, precision=1e-9)
    np.testing.assert_allclose(ours, gdal, rtol=0, atol=1e-3)
    # and it is an area average: the mean is kept, cells are means of 2.5×2.5 footprints
    assert abs(ours.mean() - hr.mean()) < 1e-3 * np.ptp(hr)
    np.testing.assert_allclose(ours[0, 0], (hr[:2, :2].sum() + 0.5 * hr[:2, 2].sum()
                                            + 0.5 * hr[2, :2].sum() + 0.25 * hr[2, 2])
                               / 6.25, rtol=1e-5)


def test_models_refuse_factors_they_do_not_cover(tmp_path, crop):
    m2 = str(tmp_path / "m2.pt")
    checkpoint.save(checkpoint.from_model(tiny_fast(2), "torch-bicubic"), m2)
    out = tmp_path / "o.tif"
    with pytest.raises(DemSrError, match=r"covers factors ×2 \(model ×2\).*×3 finer"):
        superresolve(SuperResolveRequest(str(crop), str(out), scale=3, method="model",
                                         model_path=m2))
    with pytest.raises(DemSrError, match=r"no bundled model for a ×9.*up to ×8"):
        superresolve(SuperResolveRequest(str(crop), str(out), scale=9, method="model"))
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "m2.pt"]
    covers = lambda s, f: coverage.rule(s).covers(f)  # noqa: E731 - checkpoints without factors
    assert covers(4, 1.0001) and covers(4, 3) and covers(4, 8)
    assert not covers(4, 8.5) and not covers(4, 1.0) and not covers(2, 1.5)


@pytest.mark.parametrize("factor", [1.5625, 2.5, 3, 6])
def test_bundled_model_beats_best_classical_on_held_out_dem(tmp_path, dems_dir, factor):
    """Aletsch (held out of training): LR = area average onto a grid `factor` coarser."""
    hr = dem_crop(dems_dir / "glacierflowmodel_aletsch_200m.tif", tmp_path / "hr.tif", 0, 0,
                  300)
    g = open_dem(str(tmp_path / "hr.tif")).grid
    n = int(round(300 / factor))
    lr_grid = Grid(g.transform * Affine.scale(factor), n, n, g.crs)
    lr = tmp_path / "lr.tif"
    write_array(str(lr), area_average(hr, g.transform, (n, n), lr_grid.transform), lr_grid)
    rmse = {}
    for method in ("model", "lanczos", "cubicspline", "cubic"):
        out = tmp_path / f"{method}.tif"
        res = superresolve(SuperResolveRequest(str(lr), str(out), scale=factor, method=method,
                                               device="cpu"))
        pred = _read(out)[0]
        assert pred.shape == hr.shape
        rmse[method] = compare(pred, hr, 200.0, 200.0).rmse
        if method == "model":  # the rule: exact scales first, then the factor-range models
            want = ("demsr_fast_x3.pt" if factor == 3
                    else "demsr_fast_x4_f1-2.pt" if factor < 2
                    else "demsr_fast_x3_f2-3.pt" if factor <= 2.625
                    else "demsr_fast_x4_f2-4.pt" if factor <= 3.5 else "demsr_fast_x4.pt")
            assert want in res.method, res.method
    assert rmse["model"] < 0.97 * min(rmse[m] for m in ("lanczos", "cubicspline", "cubic"))


def test_voidrepair_onto_a_finer_grid_is_superresolve_and_tiles_agree(tmp_path, dems_dir):
    """12.5 m with voids onto 8 m: voids repaired on the input grid, then the same engine as
    Super-resolve DEM (bundled models); tiled == untiled; outside voids = Super-resolve DEM."""
    from _dshat_helpers import holed_dem, tiny_dshat

    from demsr.core.pipelines import voidrepair as vr

    model = tmp_path / "tiny.pt"
    tiny_dshat(model)
    src = tmp_path / "alos.tif"
    _, holed, voids, grid = holed_dem(dems_dir / "flopy_sagehen_10m.tif", src, 300, 300, 96,
                                      100, seed=5, pixel_size=12.5)
    outs = []
    for tile in (384, 64):
        out, mask = tmp_path / f"o{tile}.tif", tmp_path / f"m{tile}.tif"
        res = vr.voidrepair(vr.VoidRepairRequest(str(src), str(out), str(mask),
                                                 model_path=str(model), device="cpu",
                                                 target_resolution=8.0, tile_size=tile))
        outs.append(_read(out)[0])
    assert outs[0].shape == (150, 156) and np.isfinite(outs[0]).all()
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-3, rtol=0)
    # one engine: = Super-resolve DEM (METHOD=model) of the DEM repaired on its own grid
    same, same_mask = tmp_path / "same.tif", tmp_path / "same_mask.tif"
    vr.voidrepair(vr.VoidRepairRequest(str(src), str(same), str(same_mask),
                                       model_path=str(model), device="cpu"))
    sr = tmp_path / "sr.tif"
    superresolve(SuperResolveRequest(str(same), str(sr), target_resolution=8.0, method="model",
                                     device="cpu"))
    np.testing.assert_allclose(outs[0], _read(sr)[0], atol=1e-3, rtol=0)
    # and the model ran: outside voids it differs from GDAL Lanczos of the repaired DEM
    lz = tmp_path / "lz.tif"
    superresolve(SuperResolveRequest(str(same), str(lz), target_resolution=8.0,
                                     method="lanczos"))
    assert np.abs(outs[0] - _read(lz)[0]).max() > 0.01
    assert res.filled_pixels > 0


def test_voidrepair_target_grid_that_does_not_overlap_is_refused(tmp_path, crop):
    from demsr.core.pipelines import voidrepair as vr

    g = open_dem(str(crop)).grid
    far = Grid(g.transform * Affine.translation(10_000, 0), 50, 50, g.crs)
    ref = tmp_path / "ref.tif"
    write_array(str(ref), np.zeros((50, 50), np.float32), far)
    out, mask = tmp_path / "o.tif", tmp_path / "m.tif"
    with pytest.raises(DemSrError, match="does not overlap"):
        vr.voidrepair(vr.VoidRepairRequest(str(crop), str(out), str(mask),
                                           target_grid_path=str(ref)))
    assert not out.exists() and not mask.exists()


def _recorded(tmp_path, scale, provenance, name="rec.pt"):
    """A tiny ×scale model whose checkpoint records `provenance` (factors, finish)."""
    model = tiny_fast(scale, seed=1)
    path = str(tmp_path / name)
    checkpoint.save(checkpoint.from_model(model, model.interpolation, provenance), path)
    return path, model


@pytest.mark.parametrize("finish, how", [("average", "area average"),
                                         ("cubicspline", "cubic spline")])
def test_engine_finish_equals_the_training_forward(tmp_path, crop, finish, how):
    """A model trained at ×2.5 (×3 network) through a finish runs in the engine exactly as
    training saw it: network, then the ×3 grid taken onto the ×2.5 grid by that finish."""
    import torch

    from demsr.core.training.area import apply, finish_matrix, to_torch

    path, model = _recorded(tmp_path, 3, {"factors": [2.5, 2.5], "finish": finish})
    out = tmp_path / "o.tif"
    logs = []
    from demsr.core.monitor import Monitor
    superresolve(SuperResolveRequest(str(crop), str(out), scale=2.5, method="model",
                                     model_path=path, device="cpu", tile_size=96),
                 Monitor(info=logs.append))
    assert any(f"then {how} onto the ×2.5 grid" in m for m in logs)
    engine = _read(out)[0]
    lr = _read(crop)[0]
    with torch.inference_mode():
        y = model(torch.from_numpy(lr.astype(np.float32))[None, None])
        fin = to_torch(finish_matrix(90, 3, 2.5, 0, 225, finish))
        train = apply(y, fin, fin)[0, 0].numpy()
    m = 40  # away from the raster edges (the engine pads them, the bare network zero-pads)
    assert engine.shape == train.shape == (225, 225)
    np.testing.assert_allclose(engine[m:-m, m:-m], train[m:-m, m:-m], atol=2e-3, rtol=0)
    # the record decides: the same weights recording nothing finish by cubic spline at ×2.5
    old, _ = _recorded(tmp_path, 3, {}, "old.pt")
    with pytest.raises(DemSrError, match=r"covers factors ×3 \(model ×3\)"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "x.tif"), scale=2.5,
                                         method="model", model_path=old))


def test_a_checkpoint_serves_the_factors_it_records_and_refuses_others(tmp_path, crop):
    out = tmp_path / "o.tif"
    single, _ = _recorded(tmp_path, 3, {"factors": [2.5, 2.5], "finish": "average"}, "s.pt")
    with pytest.raises(DemSrError, match=r"'s\.pt' \(×3\) covers factors ×2\.5 \(model ×3\), "
                                         r"but the requested output grid is ×3 finer"):
        superresolve(SuperResolveRequest(str(crop), str(out), scale=3, method="model",
                                         model_path=single))
    ranged, _ = _recorded(tmp_path, 4, {"factors": [2.0, 4.0], "finish": "average"}, "r.pt")
    logs = []
    from demsr.core.monitor import Monitor
    superresolve(SuperResolveRequest(str(crop), str(out), scale=3, method="model",
                                     model_path=ranged, device="cpu"), Monitor(info=logs.append))
    assert any("then area average onto the ×3 grid" in m for m in logs)  # not cubic spline
    with pytest.raises(DemSrError, match=r"×2 to ×4 \(model ×4, trained for that range\).*"
                                         r"×1\.5 finer"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "p.tif"), scale=1.5,
                                         method="model", model_path=ranged))
    # a record that makes no sense is refused, not trusted
    bad, _ = _recorded(tmp_path, 4, {"factors": [0, 99], "finish": "average"}, "bad.pt")
    with pytest.raises(DemSrError, match=r"'bad\.pt' records factors \[0, 99\]"):
        superresolve(SuperResolveRequest(str(crop), str(tmp_path / "q.tif"), scale=3,
                                         method="model", model_path=bad))
    # a checkpoint that records nothing keeps the rule it was made under (×3: cubic spline)
    logs.clear()
    old, _ = _recorded(tmp_path, 4, {}, "old.pt")
    superresolve(SuperResolveRequest(str(crop), str(tmp_path / "r.tif"), scale=3,
                                     method="model", model_path=old, device="cpu"),
                 Monitor(info=logs.append))
    assert any("then cubic spline onto the ×3 grid" in m for m in logs)


def test_bundled_rule_is_one_table_the_checkpoints_agree_with():
    """Every row of bundled.RULE names a shipped model whose checkpoint covers the row's
    factors with the row's finish (what it records, else its scale's rule), and the engine
    picks rows by it: an exact ×2/×3/×4 grid its own model, else the first interval."""
    from demsr.core.nets import bundled
    from demsr.core.pipelines.model_upsampler import bundled_route, resolve_model_path

    assert bundled.sr_scales() == [2, 3, 4]
    for row in bundled.RULE:
        ck = checkpoint.load(row.path)
        assert ck.verified and ck.scale == row.scale, row
        cov = coverage.of_checkpoint(ck.scale, ck.provenance, row.model)
        probes = [row.hi] if row.exact else [row.lo + (row.hi - row.lo) * k / 4
                                             for k in (1, 2, 3, 4)]
        for f in probes:
            assert cov.covers(f), (row, f)
            if not row.exact:
                assert cov.finish_for(f) == row.finish, (row, f)
    src = Grid(Affine(10.0, 0, 5000.0, 0, -10.0, 9000.0), 64, 64, None)
    picks = {}
    for factor in (1.5625, 2, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 6, 8):
        dst = output_grid(src, factor)
        row = bundled_route(src, dst)
        assert os.path.basename(resolve_model_path(None, src, dst)) == row.model
        picks[factor] = (row.model, row.finish, row.blend)
    assert picks == {
        1.5625: ("demsr_fast_x4_f1-2.pt", "average", False),
        2: ("demsr_fast_x2.pt", "", False),
        2.5: ("demsr_fast_x3_f2-3.pt", "cubicspline", True),
        2.75: ("demsr_fast_x4_f2-4.pt", "cubicspline", True),
        3: ("demsr_fast_x3.pt", "", False),
        3.25: ("demsr_fast_x4_f2-4.pt", "cubicspline", False),
        3.5: ("demsr_fast_x4_f2-4.pt", "cubicspline", False),
        3.75: ("demsr_fast_x4.pt", "cubicspline", False),
        4: ("demsr_fast_x4.pt", "", False),
        6: ("demsr_fast_x4.pt", "cubicspline", False),
        8: ("demsr_fast_x4.pt", "cubicspline", False)}
    # a grid ×3 finer but not the input's subdivided 3×3 (shifted): the interval rows
    shifted = output_grid(src, 3)
    shifted = Grid(shifted.transform * Affine.translation(0.5, 0.5), shifted.width,
                   shifted.height, None)
    row = bundled_route(src, shifted)
    assert (row.model, row.blend) == ("demsr_fast_x4_f2-4.pt", True)
    assert bundled_route(src, output_grid(src, 8.5)) is None

