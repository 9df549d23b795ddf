"""Mosaics over worker processes: tiles of one DEM super-resolved by several workers equal the
merged DEM super-resolved at once (voids across the seam included); reruns skip finished
tiles; a crashed worker or a cancel leaves no half-written file."""
import os

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import Cancelled, DemSrError  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.pipelines.mosaic import MosaicRequest, run_mosaic  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.grid import Grid  # noqa: E402
from demsr.core.raster.io import read_band, write_array  # noqa: E402


@pytest.fixture(scope="module")
def split(dems_dir, tmp_path_factory):
    """A real DEM crop with voids across and beside the seams, and its 2×2 tiles."""
    folder = tmp_path_factory.mktemp("mosaic")
    with rasterio.open(dems_dir / "flopy_sagehen_10m.tif") as ds:
        dem = read_band(ds, 1)[100:340, 100:420].copy()
        t, crs = ds.transform * ds.transform.translation(100, 100), ds.crs
    dem[100:130, 150:175] = np.nan  # across the vertical seam (col 160)
    dem[40:52, 140:158] = np.nan    # beside it
    dem[112:126, 20:40] = np.nan    # across the horizontal seam (row 120)
    write_array(str(folder / "merged.tif"), dem, Grid(t, 320, 240, crs))
    tiles = []
    for r0, r1, rn in ((0, 120, "n"), (120, 240, "s")):
        for c0, c1, cn in ((0, 160, "w"), (160, 320, "e")):
            path = folder / f"{rn}{cn}.tif"
            write_array(str(path), dem[r0:r1, c0:c1],
                        Grid(t * t.translation(c0, r0), c1 - c0, r1 - r0, crs))
            tiles.append(str(path))
    return folder, tiles


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1), ds.transform


def _merged(folder, **kw):
    out = folder / f"merged_{kw.get('method')}_{kw.get('target_resolution')}.tif"
    if not out.exists():
        superresolve(SuperResolveRequest(str(folder / "merged.tif"), str(out), device="cpu",
                                         tile_size=128, **kw))
    return _read(out)


def _same(vrt, merged, atol):
    got, t = _read(vrt)
    want, tw = merged
    assert t.almost_equals(tw) and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) <= atol


def _leftovers(folder):
    """Hidden partial files or a work folder left behind."""
    return [n for n in os.listdir(folder) if n.startswith(".") and n != ".demsr_mosaic.json"]


def test_tiles_over_two_workers_equal_the_merged_raster_then_rerun_skips(split, tmp_path):
    folder, tiles = split
    out = tmp_path / "x2"
    res = run_mosaic(MosaicRequest(tiles, str(out), method="model", device="cpu", workers=2,
                                   tile_size=128))
    assert res.computed == 4 and res.skipped == 0 and res.output_pixels == 640 * 480
    assert sorted(os.listdir(out)) == [".demsr_mosaic.json", "mosaic.vrt", "ne_x2.tif",
                                       "nw_x2.tif", "se_x2.tif", "sw_x2.tif"]
    _same(res.vrt_path, _merged(folder, method="model", scale=2), 1e-3)
    again = run_mosaic(MosaicRequest(tiles, str(out), method="model", device="cpu", workers=2,
                                     tile_size=128))
    assert again.computed == 0 and again.skipped == 4
    os.remove(out / "se_x2.tif")
    with open(out / "nw_x2.tif", "r+b") as f:  # a damaged tile is not "done"
        f.truncate(2000)
    third = run_mosaic(MosaicRequest(tiles, str(out), method="model", device="cpu", workers=1,
                                     tile_size=128))
    assert third.computed == 2 and third.skipped == 2
    _same(third.vrt_path, _merged(folder, method="model", scale=2), 1e-3)
    with pytest.raises(DemSrError, match="other inputs or settings"):
        run_mosaic(MosaicRequest(tiles, str(out), method="lanczos", workers=1))


def test_non_integer_factor_from_a_vrt_equals_the_merged_raster(split, tmp_path):
    from osgeo import gdal

    folder, tiles = split
    vrt = str(tmp_path / "in.vrt")
    gdal.BuildVRT(vrt, tiles).FlushCache()
    res = run_mosaic(MosaicRequest([vrt], str(tmp_path / "tr"), method="lanczos",
                                   target_resolution=6.4, scale=None, workers=2, tile_size=64))
    assert res.computed == 4
    _same(res.vrt_path, _merged(folder, method="lanczos", target_resolution=6.4, scale=None),
          1e-4)


def test_blended_factor_over_workers_equals_the_merged_raster(split, tmp_path):
    """10 m → 4 m (×2.5): the bundled models' mean of two routes (core/pipelines/blend.py)
    stays seamless across the workers' windows."""
    folder, tiles = split
    res = run_mosaic(MosaicRequest(tiles, str(tmp_path / "b"), method="model",
                                   target_resolution=4.0, scale=None, workers=2, tile_size=64))
    assert res.computed == 4
    _same(res.vrt_path, _merged(folder, method="model", target_resolution=4.0, scale=None),
          2e-3)


def test_a_crashed_worker_leaves_complete_tiles_only_and_a_rerun_finishes(split, tmp_path,
                                                                          monkeypatch):
    folder, tiles = split
    out = tmp_path / "crash"
    req = MosaicRequest(tiles, str(out), method="lanczos", workers=1, tile_size=64)
    monkeypatch.setenv("DEMSR_MOSAIC_TEST_CRASH", "se_x2.tif")  # dies half-way through it
    with pytest.raises(DemSrError, match="worker process died"):
        run_mosaic(req)
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == \
        ["ne_x2.tif", "nw_x2.tif", "sw_x2.tif"]
    assert _leftovers(out) == []
    monkeypatch.delenv("DEMSR_MOSAIC_TEST_CRASH")
    res = run_mosaic(req)
    assert res.computed == 1 and res.skipped == 3
    _same(res.vrt_path, _merged(folder, method="lanczos", scale=2), 1e-4)


def test_cancel_keeps_finished_tiles_and_no_partial_file(split, tmp_path):
    _, tiles = split
    out = tmp_path / "cancel"
    done = []
    mon = Monitor(progress=done.append, cancelled=lambda: bool(done))
    with pytest.raises(Cancelled):
        run_mosaic(MosaicRequest(tiles, str(out), method="lanczos", workers=1, tile_size=64),
                   mon)
    kept = [n for n in os.listdir(out) if not n.startswith(".")]
    assert 1 <= len(kept) < 4 and "mosaic.vrt" not in kept
    assert _leftovers(out) == []


def test_tiles_on_different_grids_are_refused(split, tmp_path):
    folder, tiles = split
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(tiles[0]) as ds:
        data, t, crs = read_band(ds, 1), ds.transform, ds.crs
    write_array(str(shifted), data, Grid(t * t.translation(0.5, 0), data.shape[1],
                                         data.shape[0], crs))
    with pytest.raises(DemSrError, match="not on the pixel grid"):
        run_mosaic(MosaicRequest([tiles[1], str(shifted)], str(tmp_path / "o"),
                                 method="lanczos"))


def test_engine_window_is_the_window_of_the_whole_output(split, tmp_path):
    folder, _ = split
    full, t = _merged(folder, method="model", scale=2)
    out = tmp_path / "win.tif"
    res = superresolve(SuperResolveRequest(str(folder / "merged.tif"), str(out), method="model",
                                           device="cpu", tile_size=64, window=(50, 70, 200, 300)))
    got, tw = _read(out)
    assert got.shape == (200, 300) and tw.almost_equals(t * t.translation(70, 50))
    assert res.grid.width == 300
    np.testing.assert_allclose(got, full[50:250, 70:370], atol=1e-3)
    with pytest.raises(DemSrError, match="not inside"):
        superresolve(SuperResolveRequest(str(folder / "merged.tif"), str(tmp_path / "w2.tif"),
                                         method="lanczos", window=(400, 0, 100, 100)))
