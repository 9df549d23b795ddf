"""METHOD=delta with an auxiliary DEM coarser than the DEM: the bundled super-resolution
models bring it onto the repair grid (core/pipelines/aux_superresolve.py) where that
measures better, only around the voids, with the values Super-resolve DEM gives."""
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from demsr.core.monitor import Monitor
from demsr.core.nodata.auxiliary import AuxReader, auxiliary_on, delta_inpaint, open_auxiliary
from demsr.core.nodata.find import MASK_AUXILIARY
from demsr.core.nodata.synthetic import synthetic_auxiliary
from demsr.core.pipelines import aux_superresolve as axs
from demsr.core.pipelines import voidrepair as vr
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import open_dem, read_band
from demsr.core.raster.write import write_array

from _dshat_helpers import holed_dem

pytest.importorskip("onnxruntime")

SAGEHEN = "flopy_sagehen_10m.tif"


def _coarse_aux(truth, grid, path, seed=2, **kw):
    """The issue's validation auxiliary of `truth` (×4 area average on a grid shifted by a
    quarter cell; error and bias as given) as a GeoTIFF on its own grid."""
    aux, (f, ro, co) = synthetic_auxiliary(truth, np.random.default_rng(seed), **kw)
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    write_array(str(path), aux, Grid(t, aux.shape[1], aux.shape[0], grid.crs))
    return str(path)


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def test_superresolved_auxiliary_fills_voids_closer_to_the_truth_than_lanczos(tmp_path,
                                                                          dems_dir):
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 60, 60,
                                          256, 256, seed=11)
    aux = _coarse_aux(truth, grid, tmp_path / "aux.tif")
    log = []
    res = vr.voidrepair(vr.VoidRepairRequest(str(tmp_path / "holed.tif"), str(tmp_path / "o.tif"),
                                             str(tmp_path / "m.tif"), method="delta",
                                             auxiliary_path=aux), Monitor(info=log.append))
    text = "\n".join(log)
    assert "AUXILIARY is ×4 coarser" in text and "bundled ×2 super-resolution route" in text
    assert "model fast ×2" in text and "then GDAL Lanczos" in text
    sr = _read(tmp_path / "o.tif")
    assert (_read(tmp_path / "m.tif")[voids] == MASK_AUXILIARY).all() and res.filled_pixels
    # today's route: the auxiliary onto the grid by Lanczos (what DS-HAT's inputs still read)
    lanczos, _ = delta_inpaint(holed, voids, auxiliary_on(open_auxiliary(aux, grid), grid))
    rmse = lambda d: float(np.sqrt(np.mean((d[voids] - truth[voids]) ** 2)))  # noqa: E731
    assert rmse(sr) < 0.95 * rmse(lanczos), (rmse(sr), rmse(lanczos))
    np.testing.assert_array_equal(sr[~voids], truth[~voids])


def test_a_window_equals_super_resolve_dem_and_does_not_depend_on_the_regions(tmp_path,
                                                                         dems_dir):
    """Tiled = untiled: the fine auxiliary in a window is Super-resolve DEM's METHOD=model
    output of the whole auxiliary (then Lanczos onto the window), whether the reader planned
    regions for two small windows or for the whole grid; the auxiliary's own voids take
    the Lanczos value near them."""
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 40, 40, 320,
                                      320, seed=4)
    aux_path = _coarse_aux(truth, grid, tmp_path / "aux.tif", error=0.0, bias=0.0)
    aux, dem = open_auxiliary(aux_path, grid), open_dem(str(tmp_path / "holed.tif"))
    wins = [(slice(100, 160), slice(90, 170)), (slice(200, 260), slice(30, 90))]
    whole = [(slice(0, grid.height), slice(0, grid.width))]
    got = {}
    for name, plan in (("small", wins), ("whole", whole)):
        with AuxReader(aux, grid, superresolve=True, windows=plan, dem=dem) as reader:
            assert reader.sr is not None and reader.check < 1.0
            got[name] = [reader.window(w) for w in wins]
    with AuxReader(aux, grid) as plain:          # off by default (DS-HAT's inputs)
        assert plain.sr is None
        lanczos = [plain.window(w) for w in wins]
    fine_grid = axs.sr_grid(aux.grid, axs.plan(aux.grid, grid).sr_factor)   # ×2, then Lanczos
    fine = str(tmp_path / "fine.tif")
    superresolve(SuperResolveRequest(aux_path, fine, method="model", grid=fine_grid,
                                     device="cpu", tile_size=256))
    with rasterio.open(fine) as ds:
        fine_data, fine_t = read_band(ds, 1), ds.transform
    for k, (r, c) in enumerate(wins):
        np.testing.assert_allclose(got["small"][k], got["whole"][k], atol=1e-3, rtol=0)
        ref = np.full((r.stop - r.start, c.stop - c.start), np.nan, np.float32)
        reproject(fine_data, ref, src_transform=fine_t, src_crs=grid.crs, src_nodata=np.nan,
                  dst_transform=grid.window_transform(r.start, c.start), dst_crs=grid.crs,
                  dst_nodata=np.nan, resampling=Resampling.lanczos, tolerance=0.0)
        np.testing.assert_allclose(got["small"][k], ref, atol=1e-3, rtol=0)
        assert np.abs(got["small"][k] - lanczos[k]).max() > 0.05   # the models did something
    # the auxiliary's own voids: cells whose network input reaches them take the Lanczos
    # value (that input would depend on how far a region reaches); the rest stay as they were
    holey = _coarse_aux(truth, grid, tmp_path / "aux_voids.tif", error=0.0, bias=0.0)
    with rasterio.open(holey, "r+") as ds:
        a = ds.read(1)
        a[70:73, 70:73] = ds.nodata
        ds.write(a, 1)
    aux_v = open_auxiliary(holey, grid)
    near = (slice(272, 306), slice(272, 306))
    with AuxReader(aux_v, grid, superresolve=True, windows=whole, dem=dem) as reader, \
            AuxReader(aux_v, grid) as plain:
        assert reader.sr is not None
        got_near, lz_near, far = reader.window(near), plain.window(near), reader.window(wins[0])
    both = np.isfinite(got_near) | np.isfinite(lz_near)
    assert both.sum() > 500
    np.testing.assert_array_equal(got_near[both], lz_near[both])
    np.testing.assert_allclose(far, got["whole"][0], atol=1e-3, rtol=0)


def test_a_real_second_product_that_the_models_would_make_worse_keeps_lanczos(
        tmp_path, dems_dir, monkeypatch):
    """The OGGM 46 m DEM with the Swiss 200 m DEM (another product and epoch, another CRS,
    ×4.35 coarser): the self-check around the voids finds the models' auxiliary rougher
    against the DEM, says so, and the fill is today's Lanczos delta fill exactly."""
    dem_path = dems_dir / "oggm_RGI50-11.01270_46m.tif"
    aux_path = str(dems_dir / "glacierflowmodel_aletsch_200m.tif")
    with rasterio.open(dem_path) as ds:
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    truth, holed, voids, grid = holed_dem(dem_path, tmp_path / "holed.tif", 0, 0, grid.height,
                                          grid.width, seed=3)
    log = []
    vr.voidrepair(vr.VoidRepairRequest(str(tmp_path / "holed.tif"), str(tmp_path / "o.tif"),
                                       str(tmp_path / "m.tif"), auxiliary_path=aux_path),
                  Monitor(info=log.append))
    text = "\n".join(log)
    assert "AUXILIARY is ×4.35 coarser" in text and "were tried around the voids" in text
    # today's streamed fill (the models never considered) gives the same values
    monkeypatch.setattr(axs, "MIN_FACTOR", np.inf)
    log.clear()
    vr.voidrepair(vr.VoidRepairRequest(str(tmp_path / "holed.tif"), str(tmp_path / "l.tif"),
                                       str(tmp_path / "lm.tif"), auxiliary_path=aux_path),
                  Monitor(info=log.append))
    assert "brought onto the repair grid by GDAL Lanczos (below" in "\n".join(log)
    np.testing.assert_array_equal(_read(tmp_path / "o.tif"), _read(tmp_path / "l.tif"))
    assert np.isfinite(_read(tmp_path / "o.tif")[voids]).all()


@pytest.mark.parametrize("factor,expected", [(1.0, None), (1.05, None), (1.5, 1.5), (1.98, 2.0),
                                             (3.98, 2.0), (6.3, 2.0), (7.1, 2.0), (7.5, None),
                                             (8.0, None), (12.0, None)])
def test_which_factors_go_through_the_models(factor, expected):
    """Below ×1.1 and above ×7 (measured no better on some DEM) Lanczos stays; the models take the
    auxiliary at most ×2 finer (Lanczos the rest); a factor within 2 % of an integer runs
    the exact model."""
    from affine import Affine
    from rasterio.crs import CRS

    dem = Grid(Affine(10.0, 0, 500000, 0, -10.0, 4500000), 100, 100, CRS.from_epsg(32632))
    aux = Grid(Affine(10.0 * factor, 0, 500000, 0, -10.0 * factor, 4500000), 20, 20, dem.crs)
    p = axs.plan(aux, dem)
    assert p.factor == pytest.approx(factor)
    assert p.sr_factor == (None if expected is None else pytest.approx(expected))
    # a geographic auxiliary: the factor from cell sizes in metres (3" ≈ 92.6 m × 64 m here)
    geo = Grid(Affine(3 / 3600, 0, 9.0, 0, -3 / 3600, 46.2), 40, 40, CRS.from_epsg(4326))
    dem30 = Grid(Affine(30.0, 0, 500000, 0, -30.0, 5100000), 100, 100, CRS.from_epsg(32632))
    assert axs.coarser_factor(geo, dem30) == pytest.approx(np.sqrt(92.6 * 64.2) / 30, rel=0.02)
