"""Void repair/SR pipeline on real DEMs: footprint, mask, grids (×1.5625), spectral bands,
channel-set errors, tiling, failures."""
import os

import numpy as np
import pytest
import rasterio
from affine import Affine

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402,F401 - a missing torch must fail, not skip

from demsr.core.errors import Cancelled, DemSrError  # noqa: E402
from demsr.core.raster.grid import Grid, source_index  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.pipelines import voidrepair as vr  # noqa: E402
from demsr.core.pipelines import voidrepair_model as vm  # noqa: E402
from demsr.core.pipelines.dshat_inputs import prepare, read_spectral  # noqa: E402
from demsr.core.nodata.find import classify_voids  # noqa: E402
from demsr.core.raster.tiles import sparse_windows  # noqa: E402
from demsr.core.raster.warp import warp  # noqa: E402

from _dshat_helpers import four_band_raster, holed_dem, tiny_dshat  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.transform, ds.crs, ds.read(1)


def _run(tmp_path, src, model, **kw):
    out, mask = tmp_path / "out.tif", tmp_path / "mask.tif"
    res = vr.voidrepair(vr.VoidRepairRequest(str(src), str(out), str(mask), model_path=str(model),
                                             device="cpu", **kw))
    return res, out, mask


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    tiny_dshat(path)
    return path


def test_pure_repair_fills_voids_keeps_data_and_footprint(tmp_path, dems_dir, model_path):
    src = tmp_path / "holed.tif"
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 200, 200, 140, 150, seed=3)
    # nodata touching the border (like sea beyond a coast) is outside the footprint
    rows, cols = np.mgrid[:140, :150]
    outside = rows + cols < 30
    holed[outside] = np.nan
    write_array(str(src), holed, grid)
    res, out, mask = _run(tmp_path, src, model_path)
    dem, t, _, _ = _read(out)
    m, _, _, raw = _read(mask)
    assert t == grid.transform and dem.shape == holed.shape
    assert np.isfinite(dem[~outside]).all(), "nodata left inside the footprint"
    assert np.isnan(dem[outside]).all()
    expected_voids = voids & ~outside
    np.testing.assert_array_equal(raw == 1, expected_voids)
    assert (raw[outside] == 255).all() and res.filled_pixels == expected_voids.sum()
    keep = ~expected_voids & ~outside
    np.testing.assert_array_equal(dem[keep], holed[keep])  # data untouched on its own grid
    # filled values are plausible terrain: close to the truth, nowhere wild
    err = dem[expected_voids] - truth[expected_voids]
    assert np.sqrt(np.mean(err ** 2)) < 0.2 * (np.nanmax(truth) - np.nanmin(truth))


def test_max_void_size_leaves_big_voids(tmp_path, dems_dir, model_path):
    src = tmp_path / "holed.tif"
    _, holed, _, grid = holed_dem(dems_dir / SAGEHEN, src, 100, 100, 120, 120, coverage=0)
    holed[10:14, 10:14] = np.nan     # 4 px wide
    holed[50:90, 40:80] = np.nan     # 40 px wide
    write_array(str(src), holed, grid)
    res, out, mask = _run(tmp_path, src, model_path, max_void_size=20)
    dem, _, _, _ = _read(out)
    raw = _read(mask)[3]
    assert np.isfinite(dem[10:14, 10:14]).all() and (raw[10:14, 10:14] == 1).all()
    assert np.isnan(dem[50:90, 40:80]).all() and (raw[50:90, 40:80] == 255).all()
    assert res.left_pixels == 1600


def _centre_classes(src_grid: Grid, src_voids: np.ndarray, dst: Grid) -> np.ndarray:
    """Independent mask: 1 where the target pixel centre lies in a void input cell."""
    rows, cols = np.arange(dst.height), np.arange(dst.width)
    r, _ = source_index(src_grid, dst, rows, np.zeros_like(rows))
    _, c = source_index(src_grid, dst, np.zeros_like(cols), cols)
    inside = ((r >= 0) & (r < src_grid.height))[:, None] & ((c >= 0) & (c < src_grid.width))[None]
    out = np.zeros((dst.height, dst.width), bool)
    rr, cc = np.clip(r, 0, src_grid.height - 1), np.clip(c, 0, src_grid.width - 1)
    out[inside] = src_voids[np.ix_(rr, cc)][inside]
    return out


def test_12_5_to_8_m_grid_alignment(tmp_path, dems_dir, model_path):
    """ALOS-like 12.5 m input onto 8 m (×1.5625): exact grid, mask follows pixel centres."""
    src = tmp_path / "alos.tif"
    _, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 300, 300, 96, 100, seed=5,
                                      pixel_size=12.5)
    res, out, mask = _run(tmp_path, src, model_path, target_resolution=8.0)
    dem, t, crs, _ = _read(out)
    raw = _read(mask)[3]
    assert (t.a, t.e, t.c, t.f) == (8.0, -8.0, grid.transform.c, grid.transform.f)
    assert dem.shape == (round(96 * 12.5 / 8), round(100 * 12.5 / 8)) == (150, 156)
    assert crs == grid.crs
    dst = Grid(t, dem.shape[1], dem.shape[0], crs)
    np.testing.assert_array_equal(raw == 1, _centre_classes(grid, voids, dst))
    assert np.isfinite(dem).all()
    # the same through a reference raster whose grid is 8 m, shifted by half a pixel
    ref_t = Affine(8.0, 0, grid.transform.c + 4, 0, -8.0, grid.transform.f - 4)
    ref = Grid(ref_t, 140, 120, grid.crs)
    write_array(str(tmp_path / "ref.tif"), np.zeros((120, 140), np.float32), ref)
    _run(tmp_path, src, model_path, target_grid_path=str(tmp_path / "ref.tif"))
    dem2, t2, _, _ = _read(out)
    raw2 = _read(mask)[3]
    assert t2 == ref_t and dem2.shape == (120, 140)
    np.testing.assert_array_equal(raw2 == 1, _centre_classes(grid, voids, ref))


def test_spectral_bands_on_another_grid_are_warped_and_used(tmp_path, dems_dir):
    """A real 4-band raster in EPSG:4326 at another resolution feeds a spectral model."""
    src = tmp_path / "holed.tif"
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 250, 250, 100, 100, seed=2)
    full = tmp_path / "full.tif"
    write_array(str(full), truth, grid)
    s2 = four_band_raster(full, tmp_path / "s2.tif")
    with rasterio.open(s2) as ds:
        assert ds.count == 4 and ds.crs.to_epsg() == 4326
    # aligned: the elevation band warped back onto the DEM grid matches the DEM
    bands, sgrid = read_spectral(str(s2), 4)
    back = warp(bands[0], sgrid, grid, "bilinear")
    ok = np.isfinite(back)
    assert ok.mean() > 0.9
    assert np.corrcoef(back[ok], truth[ok])[0, 1] > 0.995
    model = tmp_path / "spec.pt"
    tiny_dshat(model, spectral=True)
    _, out, mask = _run(tmp_path, src, model, spectral_path=str(s2), target_resolution=6.0)
    with_s2 = _read(out)[0]
    assert np.isfinite(with_s2).all()
    # the bands reach the network: other band values give another result
    with rasterio.open(s2) as ds:
        profile, data = ds.profile, ds.read()
    with rasterio.open(tmp_path / "s2b.tif", "w", **profile) as ds:
        ds.write(data[[3, 2, 1, 0]])
    _run(tmp_path, src, model, spectral_path=str(tmp_path / "s2b.tif"), target_resolution=6.0)
    assert np.abs(_read(out)[0] - with_s2).max() > 1e-3


def test_channel_set_mismatches_are_clear_errors(tmp_path, dems_dir, model_path):
    src = tmp_path / "holed.tif"
    _, _, _, grid = holed_dem(dems_dir / SAGEHEN, src, 250, 250, 64, 64)
    spec_model = tmp_path / "spec.pt"
    tiny_dshat(spec_model, spectral=True)
    with pytest.raises(DemSrError, match="cannot run without them.*SPECTRAL"):
        _run(tmp_path, src, spec_model)
    two = tmp_path / "two.tif"
    with rasterio.open(two, "w", driver="GTiff", width=64, height=64, count=2, dtype="float32",
                       crs=grid.crs, transform=grid.transform) as ds:
        ds.write(np.ones((2, 64, 64), np.float32))
    with pytest.raises(DemSrError, match="has 2 band"):
        _run(tmp_path, src, spec_model, spectral_path=str(two))
    with pytest.raises(DemSrError, match="terrain channels only.*Clear SPECTRAL"):
        _run(tmp_path, src, model_path, spectral_path=str(two))
    from _model_helpers import tiny_fast
    from demsr.core.nets import checkpoint

    checkpoint.save(checkpoint.from_model(tiny_fast(2), "torch-bicubic"), str(tmp_path / "f.pt"))
    with pytest.raises(DemSrError, match="'fast' super-resolution model"):
        _run(tmp_path, src, tmp_path / "f.pt")
    assert not (tmp_path / "out.tif").exists() and not (tmp_path / "mask.tif").exists()


def test_tiles_agree_with_one_big_tile(tmp_path, dems_dir, model_path):
    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 130, 110, seed=1)
    _run(tmp_path, src, model_path, target_resolution=7.0, tile_size=64, batch_size=3)
    tiled = _read(tmp_path / "out.tif")[0]
    _run(tmp_path, src, model_path, target_resolution=7.0, tile_size=1024)
    np.testing.assert_allclose(tiled, _read(tmp_path / "out.tif")[0], atol=1e-3, rtol=0)


def test_cancel_and_bad_input_leave_nothing(tmp_path, dems_dir, model_path):
    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 80, 80)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3
    with pytest.raises(Cancelled):
        vr.voidrepair(vr.VoidRepairRequest(str(src), str(tmp_path / "o.tif"),
                                           str(tmp_path / "m.tif"), model_path=str(model_path),
                                           device="cpu"), Monitor(cancelled=cancelled))
    assert sorted(os.listdir(tmp_path)) == ["holed.tif"]
    with pytest.raises(DemSrError, match="same file"):
        vr.voidrepair(vr.VoidRepairRequest(str(src), str(tmp_path / "o.tif"),
                                           str(tmp_path / "o.tif"), model_path=str(model_path)))
    with pytest.raises(DemSrError, match="does not overlap"):
        far = Grid(Affine(10, 0, 0, 0, -10, 0), 50, 50, None)
        write_array(str(tmp_path / "far.tif"), np.zeros((50, 50), np.float32), far)
        _run(tmp_path, src, model_path, target_grid_path=str(tmp_path / "far.tif"))
    assert not (tmp_path / "out.tif").exists()


def test_sparse_voids_get_small_windows_and_the_same_values(tmp_path, dems_dir, model_path):
    import dataclasses

    from demsr.core.nets import checkpoint

    src = tmp_path / "holed.tif"
    truth, holed, voids, grid = holed_dem(dems_dir / SAGEHEN, src, 100, 100, 300, 320, seed=5,
                                          coverage=0.004)
    assert 0 < voids.mean() < 0.01
    classes, _, _ = classify_voids(holed)
    prep = prepare(holed, grid, grid, classes)
    model = checkpoint.load(str(model_path)).build()
    halo = int(model.halo)
    hit = prep.voids > 0
    side, boxes = sparse_windows(hit, 384, halo)
    covered = np.zeros(voids.shape, bool)
    for r, c, h, w in boxes:
        assert h > 0 and w > 0 and r // side == (r + h - 1) // side  # inside one tile
        assert c // side == (c + w - 1) // side
        covered[r:r + h, c:c + w] = True
    # each box is its tile's void cells' bounding box: every void covered, little else
    assert covered[hit].all() and covered.mean() < 0.05
    for r, c, h, w in boxes:
        box = hit[r:r + h, c:c + w]
        assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
    # values on void cells are those of the network run on the whole raster at once
    sparse = vm.run_model(model, prep, "cpu", 384, 2, Monitor())
    whole = vm.run_model(model, dataclasses.replace(prep, same_grid=False), "cpu", 4096, 1,
                         Monitor())
    np.testing.assert_allclose(sparse[voids], whole[voids], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(sparse[~covered], prep.dem[~covered])  # not run there
    # two small voids far apart: two windows of their own cells, not two tiles
    two = np.zeros((768, 768), bool)
    two[10:15, 20:26] = two[700:705, 600:603] = True
    assert sorted(sparse_windows(two, 384, halo)[1]) == [(10, 20, 5, 6), (700, 600, 5, 3)]
    # a void across a tile border stays one window when splitting it costs more halo
    across = np.zeros((768, 768), bool)
    across[60:70, 90:100] = True
    assert sparse_windows(across, 384, halo, 64)[1] == [(60, 90, 10, 10)]
    # dense voids keep the tile size asked for
    dense = np.zeros((768, 768), np.float32)
    dense[::4, ::4] = 1.0
    assert sparse_windows(dense > 0, 384, halo)[0] == 384


def test_a_grid_too_big_for_the_memory_stops_before_work(tmp_path, dems_dir, model_path,
                                                         monkeypatch):
    from demsr.core import memory

    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 60, 60)
    free = memory.available_bytes()
    assert free is not None and free > 10 ** 8  # Linux reports it (psutil or /proc/meminfo)
    monkeypatch.setattr(vm, "available_bytes", lambda: 500_000_000)
    with pytest.raises(DemSrError, match=r"needs about 0\.8 GB; 0\.5 GB is available.*Clip"):
        _run(tmp_path, src, model_path)
    assert sorted(os.listdir(tmp_path)) == ["holed.tif"]
    monkeypatch.setattr(vm, "available_bytes", lambda: 4_000_000_000)
    res, out, _ = _run(tmp_path, src, model_path)
    assert out.exists() and res.filled_pixels > 0
