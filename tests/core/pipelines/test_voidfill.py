"""Void repair's classical methods on real DEMs: METHOD=fill and METHOD=delta (an auxiliary
DEM), FILLED_MASK codes, streaming, no PyTorch, bad auxiliaries."""
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from demsr.core.backends import gpu_driver_present
from demsr.core.errors import Cancelled, DemSrError
from demsr.core.monitor import Monitor
from demsr.core.nodata.find import MASK_AUXILIARY, MASK_FILLED, MASK_KEPT, MASK_NODATA
from demsr.core.nodata.inpaint import inpaint
from demsr.core.nodata.synthetic import synthetic_auxiliary
from demsr.core.pipelines import voidrepair as vr
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array

from _dshat_helpers import TERRAIN, holed_dem, tiny_dshat

SAGEHEN = "flopy_sagehen_10m.tif"
LIDAR = "pypi_lidar_dem_1m.tif"


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.read(1)


def _repair(tmp_path, src, name="o", monitor=None, **kw):
    out, mask = tmp_path / f"{name}.tif", tmp_path / f"{name}_mask.tif"
    res = vr.voidrepair(vr.VoidRepairRequest(str(src), str(out), str(mask), **kw), monitor)
    return (res, *_read(out), _read(mask)[1])


def _write_aux(path, data, grid):
    write_array(str(path), data.astype(np.float32), grid)
    return path


def _aux_in_wgs84(tmp_path, truth, grid, seed):
    """The validation auxiliary of `truth` (synthetic_auxiliary: ×4 area average, 1 % smooth
    error, 2 % bias, quarter-cell shift) reprojected to WGS 84 (bilinear), as a GeoTIFF."""
    from rasterio.crs import CRS

    aux, (f, ro, co) = synthetic_auxiliary(truth, np.random.default_rng(seed))
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    native = _write_aux(tmp_path / "aux_native.tif", aux, Grid(t, aux.shape[1], aux.shape[0],
                                                               grid.crs))
    with rasterio.open(native) as ds:
        dt, w, h = calculate_default_transform(ds.crs, "EPSG:4326", ds.width, ds.height,
                                               *ds.bounds)
        geo = np.full((h, w), np.nan, np.float32)
        reproject(read_band(ds, 1), geo, src_transform=ds.transform, src_crs=ds.crs,
                  dst_transform=dt, dst_crs="EPSG:4326", resampling=Resampling.bilinear,
                  src_nodata=np.nan, dst_nodata=np.nan)
    return _write_aux(tmp_path / "aux_wgs84.tif", geo, Grid(dt, w, h, CRS.from_epsg(4326)))


def test_delta_fill_reproduces_a_truth_offset_by_a_constant_or_a_tilt(tmp_path, dems_dir):
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      240, 260, seed=3)
    yy, xx = np.mgrid[0:truth.shape[0], 0:truth.shape[1]]
    for name, aux in (("constant", truth - 37.5), ("tilt", truth + 12.0 + 0.03 * xx - 0.05 * yy)):
        path = _write_aux(tmp_path / f"aux_{name}.tif", aux, grid)
        res, dem, _, mask = _repair(tmp_path, tmp_path / "holed.tif", name, method="delta",
                                    auxiliary_path=str(path))
        assert np.abs(dem[voids] - truth[voids]).max() < 1e-3, name
        assert np.array_equal(dem[~voids], truth[~voids])          # the rest kept bit for bit
        assert (mask[voids] == MASK_AUXILIARY).all() and (mask[~voids] == MASK_KEPT).all()
        assert res.method == "delta" and res.from_auxiliary == int(voids.sum())
    # the first fill alone is far from it: the test can tell the two apart
    _, dem, _, mask = _repair(tmp_path, tmp_path / "holed.tif", "fill", method="fill")
    assert np.abs(dem[voids] - truth[voids]).max() > 1.0
    assert (mask[voids] == MASK_FILLED).all()


def test_streamed_fill_equals_the_whole_raster_fill_and_does_not_depend_on_blocks(
        tmp_path, dems_dir):
    from demsr.core.pipelines.voidfill import repair_classical
    from demsr.core.raster.io import open_dem
    from demsr.core.raster.write import atomic_outputs, gtiff_profile

    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 50, 50,
                                          300, 280, seed=5)
    aux, (f, ro, co) = synthetic_auxiliary(truth, np.random.default_rng(1), voids=0.02)
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    aux_path = _write_aux(tmp_path / "aux.tif", aux, Grid(t, aux.shape[1], aux.shape[0],
                                                          grid.crs))
    src = open_dem(str(tmp_path / "holed.tif"))
    results = {}
    for use_aux in (False, True):
        for block in (512, 1 << 20):
            out, mask = tmp_path / f"o{use_aux}{block}.tif", tmp_path / f"m{use_aux}{block}.tif"
            profiles = [(str(out), gtiff_profile(grid, -9999.0)),
                        (str(mask), gtiff_profile(grid, MASK_NODATA, dtype="uint8"))]
            aux_src = open_dem(str(aux_path)) if use_aux else None
            with atomic_outputs(profiles) as writers:
                repair_classical(src, aux_src, 0.0, writers, Monitor(), block_pixels=block)
            results[use_aux, block] = (_read(out)[0], _read(mask)[1])
        a, b = results[use_aux, 512], results[use_aux, 1 << 20]
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # the streamed first fill is the in-memory one (core.nodata.inpaint) exactly
    whole = inpaint(holed, voids)
    np.testing.assert_array_equal(results[False, 512][0], whole)
    # the auxiliary's own voids: some void cells are not covered → first fill, marked 1
    m = results[True, 512][1]
    assert (m == MASK_AUXILIARY).sum() > 0 and (m == MASK_FILLED).sum() > 0
    assert np.isfinite(results[True, 512][0][voids]).all()


def test_delta_beats_the_first_fill_with_a_coarse_shifted_biased_auxiliary_in_another_crs(
        tmp_path, dems_dir):
    """The issue's validation auxiliary (×4 area average, 1 % smooth error, 2 % bias,
    quarter-cell shift), then reprojected to WGS 84: still far better than the first fill."""
    truth, _, voids, grid = holed_dem(dems_dir / LIDAR, tmp_path / "holed.tif", 0, 0, 300, 300,
                                      seed=7)
    aux_geo = _aux_in_wgs84(tmp_path, truth, grid, 2)
    rmse = lambda d: float(np.sqrt(np.mean((d[voids] - truth[voids]) ** 2)))  # noqa: E731
    _, fill, _, _ = _repair(tmp_path, tmp_path / "holed.tif", "fill", method="fill")
    res, delta, _, mask = _repair(tmp_path, tmp_path / "holed.tif", "delta",
                                  auxiliary_path=str(aux_geo))        # METHOD=auto → delta
    assert res.method == "delta" and (mask[voids] == MASK_AUXILIARY).mean() > 0.99
    assert rmse(delta) < 0.6 * rmse(fill), (rmse(delta), rmse(fill))


def test_an_auxiliary_in_another_crs_gives_a_window_the_pixels_of_the_whole(tmp_path,
                                                                           dems_dir):
    """A repair-grid window of an auxiliary in WGS 84 equals the same pixels of the whole
    grid (Lanczos exactly; super-resolved by the models around the voids to 1 mm): GDAL
    maps pixels exactly, not to its default 0.125-px approximation that depends on the
    window (up to 5.5 cm here on Debian 12's rasterio before)."""
    from demsr.core.nodata.auxiliary import AuxReader, auxiliary_on
    from demsr.core.raster.io import open_dem

    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 50, 50, 300,
                                      280, seed=5)
    aux_src = open_dem(str(_aux_in_wgs84(tmp_path, truth, grid, 1)))
    whole = auxiliary_on(aux_src, grid)
    wins = [(slice(100, 180), slice(60, 200)), (slice(7, 58), slice(151, 188))]
    with AuxReader(aux_src, grid) as reader:
        for r, c in wins:
            np.testing.assert_array_equal(reader.window((r, c)), whole[r, c])
    dem = open_dem(str(tmp_path / "holed.tif"))
    every = [(slice(0, grid.height), slice(0, grid.width))]
    with AuxReader(aux_src, grid, True, every, dem) as a, \
            AuxReader(aux_src, grid, True, wins, dem) as b:
        assert a.sr is not None and b.sr is not None      # the models ran in both
        sr_whole = a.window(every[0])
        for r, c in wins:
            # the network's float32 sums differ by tile, as in the same CRS (1 mm)
            np.testing.assert_allclose(b.window((r, c)), sr_whole[r, c], rtol=0, atol=1e-3)
        assert np.nanmax(np.abs(sr_whole - whole)) > 0.01   # and changed the auxiliary


def test_fill_and_delta_never_import_torch_nor_route_flow(tmp_path, dems_dir):
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      120, 120, seed=2)
    aux = _write_aux(tmp_path / "aux.tif", truth + 3.0, grid)
    # a ×4 coarser auxiliary: the bundled models super-resolve it, on ONNX Runtime when it is
    # installed (core/pipelines/aux_superresolve.py)
    coarse, (f, ro, co) = synthetic_auxiliary(truth, np.random.default_rng(1))
    t = grid.transform * grid.transform.translation(co, ro) * grid.transform.scale(f)
    coarse = _write_aux(tmp_path / "coarse.tif", coarse,
                        Grid(t, coarse.shape[1], coarse.shape[0], grid.crs))
    code = f"""
import importlib.util, sys
from demsr.core.monitor import Monitor
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair
flow_calls = []
sys.setprofile(lambda frame, event, arg: flow_calls.append(frame.f_code.co_name)
               if event == "call" and frame.f_code.co_filename.endswith("terrain/flow.py")
               else None)
for m, a in (("fill", None), ("delta", {str(aux)!r}), ("auto", None), ("auto", {str(aux)!r})):
    r = voidrepair(VoidRepairRequest({str(tmp_path / 'holed.tif')!r},
                                     {str(tmp_path / 'o.tif')!r}, {str(tmp_path / 'm.tif')!r},
                                     method=m, auxiliary_path=a))
    assert r.filled_pixels > 0
sys.setprofile(None)
log = []
if importlib.util.find_spec("onnxruntime"):
    r = voidrepair(VoidRepairRequest({str(tmp_path / 'holed.tif')!r},
                                     {str(tmp_path / 'o.tif')!r}, {str(tmp_path / 'm.tif')!r},
                                     method="delta", auxiliary_path={str(coarse)!r}),
                   Monitor(info=log.append))
    assert r.filled_pixels > 0 and "onnxruntime" in sys.modules
    assert "model fast ×2" in " ".join(log) or "were tried around the voids" in " ".join(log)
bad = [k for k in sys.modules if k == "torch" or k.startswith("torch.")]
print("LOADED", bad, "FLOW", sorted(set(flow_calls)), "MODELS", bool(log))
"""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED [] FLOW []" in proc.stdout, proc.stdout
    import importlib.util

    if importlib.util.find_spec("onnxruntime"):
        assert "MODELS True" in proc.stdout, proc.stdout


def test_the_model_on_onnx_runtime_never_imports_torch(tmp_path, dems_dir):
    """METHOD=model with ONNX Runtime running the network (the default on a CPU when it is
    installed): the checkpoint is read from its NAME.onnx, PyTorch's import (1.3–1.6 s of
    every run) is never paid — with DEVICE=auto, as users run it: a CUDA build of PyTorch (the
    Debian 13 root's) is not imported to ask for a GPU on a machine without a GPU driver
    (core/backends.gpu_driver_present)."""
    pytest.importorskip("onnxruntime")
    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100, 120, 120, seed=2)
    code = f"""
import sys
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair
r = voidrepair(VoidRepairRequest({str(tmp_path / 'holed.tif')!r}, {str(tmp_path / 'o.tif')!r},
                                 {str(tmp_path / 'm.tif')!r}, method="model", device="auto"))
assert r.method == "model" and r.filled_pixels > 0
print("TORCH", [k for k in sys.modules if k == "torch" or k.startswith("torch.")],
      "ORT", "onnxruntime" in sys.modules)
"""
    if gpu_driver_present():
        pytest.skip("this machine has a GPU driver: DEVICE=auto asks PyTorch for the GPU")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TORCH [] ORT True" in proc.stdout, proc.stdout


def test_bad_auxiliaries_are_refused_before_work_and_leave_nothing(tmp_path, dems_dir):
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      120, 120, seed=2)
    src = tmp_path / "holed.tif"
    cases = []
    far = Grid(grid.transform * grid.transform.translation(10_000, 0), 120, 120, grid.crs)
    cases.append((_write_aux(tmp_path / "far.tif", truth, far), "does not overlap"))
    cases.append((_write_aux(tmp_path / "empty.tif", np.full_like(truth, np.nan), grid),
                  "no valid cell over the DEM"))
    for aux, message in cases:
        with pytest.raises(DemSrError, match=message):
            _repair(tmp_path, src, "bad", auxiliary_path=str(aux))
        assert not (tmp_path / "bad.tif").exists() and not (tmp_path / "bad_mask.tif").exists()
    with pytest.raises(DemSrError, match="METHOD=delta fills voids from a second DEM"):
        _repair(tmp_path, src, "bad", method="delta")
    with pytest.raises(DemSrError, match="same file"):     # OUTPUT = AUXILIARY
        vr.voidrepair(vr.VoidRepairRequest(str(src), str(cases[0][0]), str(tmp_path / "m.tif"),
                                           auxiliary_path=str(cases[0][0])))
    # a terrain-only model (the bundled one) with an auxiliary DEM: says what to do
    from demsr.core.nets.bundled import DSHAT_MODEL

    ok = _write_aux(tmp_path / "ok.tif", truth + 1.0, grid)
    with pytest.raises(DemSrError, match="trained without an auxiliary DEM"):
        _repair(tmp_path, src, "bad", method="model", auxiliary_path=str(ok),
                model_path=DSHAT_MODEL)
    assert not (tmp_path / "bad.tif").exists()


def test_uncovered_voids_and_an_implausible_auxiliary_are_reported(tmp_path, dems_dir):
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      200, 200, seed=4)
    aux = truth / 0.3048                     # in feet
    aux[:, :100] = np.nan                    # covers the right half only
    path = _write_aux(tmp_path / "feet.tif", aux, grid)
    warnings = []
    res, dem, _, mask = _repair(tmp_path, tmp_path / "holed.tif", "o",
                                Monitor(warning=warnings.append), auxiliary_path=str(path))
    left = voids.copy()
    left[:, 100:] = False
    text = "\n".join(warnings)
    assert f"does not cover {res.filled_pixels - res.from_auxiliary} of the" in text
    assert res.filled_pixels - res.from_auxiliary >= left.sum() > 0
    assert "another unit or vertical datum" in text and "spread" in text
    assert np.isfinite(dem[voids]).all()
    assert set(np.unique(mask[voids])) == {MASK_FILLED, MASK_AUXILIARY}


def test_cancel_leaves_nothing(tmp_path, dems_dir):
    truth, _, _, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100, 200, 200)
    aux = _write_aux(tmp_path / "aux.tif", truth + 2.0, grid)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 5
    with pytest.raises(Cancelled):
        _repair(tmp_path, tmp_path / "holed.tif", "o", Monitor(cancelled=cancelled),
                auxiliary_path=str(aux))
    assert sorted(os.listdir(tmp_path)) == ["aux.tif", "holed.tif"]


def test_finer_target_with_an_auxiliary_goes_through_the_superresolve_engine(tmp_path,
                                                                              dems_dir):
    """Repaired on the input grid from the auxiliary, then ×2 by the bundled model: tiles do
    not matter, the mask's codes follow onto the finer grid."""
    truth, _, voids, grid = holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100,
                                      96, 96, seed=6)
    aux = _write_aux(tmp_path / "aux.tif", truth - 4.0, grid)
    outs = []
    for tile in (64, 384):
        res, dem, _, mask = _repair(tmp_path, tmp_path / "holed.tif", f"o{tile}",
                                    auxiliary_path=str(aux), target_resolution=5.0,
                                    tile_size=tile)
        outs.append(dem)
        assert dem.shape == (192, 192) and np.isfinite(dem).all()
        assert (mask == MASK_AUXILIARY).sum() == res.from_auxiliary > 0
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-3, rtol=0)


def test_a_model_reading_channels_the_pipeline_does_not_make_is_refused(tmp_path, dems_dir):
    """e.g. an auxiliary-DEM channel, or the terrain channels in another order: refused
    before any work, with what to do (the network would read the wrong inputs)."""
    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100, 64, 64)
    for name, channels in (("aux", [*TERRAIN, "aux_delta"]), ("order", TERRAIN[::-1])):
        model = tmp_path / f"{name}.pt"
        tiny_dshat(model, channels=channels)
        with pytest.raises(DemSrError, match="this version makes slope, plan_curvature"):
            _repair(tmp_path, tmp_path / "holed.tif", "o", model_path=str(model), device="cpu")
        assert not (tmp_path / "o.tif").exists()
    model = tmp_path / "ok.pt"
    tiny_dshat(model)
    res, *_ = _repair(tmp_path, tmp_path / "holed.tif", "o", model_path=str(model), device="cpu")
    assert res.method == "model" and res.filled_pixels > 0


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_model_whose_output_is_absurd_is_stopped_and_leaves_nothing(tmp_path, dems_dir,
                                                                      in_memory):
    """Weights that pass every check of their numbers but answer thousands of reliefs off:
    each network window is checked before it is used (streamed and in memory)."""
    import torch

    from demsr.core.nets import checkpoint

    holed_dem(dems_dir / SAGEHEN, tmp_path / "holed.tif", 100, 100, 80, 80, seed=1)
    path = tmp_path / "absurd.pt"
    model = tiny_dshat(path)
    with torch.no_grad():
        model.tail[-1].bias.fill_(5000.0)        # + 5000 σ everywhere
    checkpoint.save(checkpoint.from_model(model, "gdal-lanczos", {"data": ["test"]}), str(path))
    with pytest.raises(DemSrError, match="absurd.pt gave elevations"):
        _repair(tmp_path, tmp_path / "holed.tif", "o", model_path=str(path), device="cpu",
                in_memory=in_memory)
    assert sorted(os.listdir(tmp_path)) == ["absurd.pt", "holed.tif"]
