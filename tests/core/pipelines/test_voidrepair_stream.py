"""Void repair on the input grid, streamed (core/pipelines/voidrepair_stream.py): the same
values as the in-memory pipeline on real DEMs, exact streamed statistics, and memory of the
streamed phase that does not grow with the raster."""
import tracemalloc

import numpy as np
import pytest
import rasterio
from scipy import ndimage

import demsr  # noqa: F401 - puts the private torch folder on sys.path

import torch  # noqa: E402,F401 - a missing torch must fail, not skip

from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.nodata.find import FILLED, classify_voids  # noqa: E402
from demsr.core.nodata.inpaint import inpaint  # noqa: E402
from demsr.core.nodata.synthetic import synthetic_voids  # noqa: E402
from demsr.core.pipelines import voidrepair as vr  # noqa: E402
from demsr.core.pipelines import voidrepair_model as vm  # noqa: E402
from demsr.core.pipelines import voidrepair_stream as vs  # noqa: E402
from demsr.core.raster.grid import Grid  # noqa: E402
from demsr.core.raster.io import open_dem, read_band
from demsr.core.raster.write import atomic_outputs, gtiff_profile, write_array
from demsr.core.terrain import DSHAT_DERIVATIVES, NormaliserSet, compute_derivatives  # noqa: E402
from demsr.core.terrain.streamfit import StreamedFit  # noqa: E402

from _dshat_helpers import holed_dem, tiny_dshat  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"
SRTM = "demcompare_srtm_ref_3arcsec_turkey.tif"   # EPSG:4326: cell sizes change by row


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    tiny_dshat(path)
    return path


def _repair(tmp_path, src, model, **kw):
    out, mask = tmp_path / "out.tif", tmp_path / "mask.tif"
    res = vr.voidrepair(vr.VoidRepairRequest(str(src), str(out), str(mask), model_path=str(model),
                                             device="cpu", **kw))
    with rasterio.open(out) as ds:
        dem = read_band(ds, 1)
    with rasterio.open(mask) as ds:
        m = ds.read(1)
    return res, dem, m


@pytest.mark.parametrize("name,max_void", [(SAGEHEN, 0.0), (SRTM, 25.0)])
def test_streamed_run_equals_in_memory_run(tmp_path, dems_dir, model_path, name, max_void):
    src = tmp_path / "holed.tif"
    _, holed, _, grid = holed_dem(dems_dir / name, src, 20, 30, 300, 330, seed=4,
                                  coverage=0.03)
    rows, cols = np.mgrid[:300, :330]
    holed[rows + cols < 40] = np.nan           # outside the footprint (touches the border)
    holed[200:240, 100:150] = np.nan           # 40 px wide: left as nodata when max_void=25
    write_array(str(src), holed, grid)
    # 64-px tiles: several 256-px blocks, tiles cut by none of them
    kw = dict(tile_size=64, batch_size=3, max_void_size=max_void)
    streamed = _repair(tmp_path, src, model_path, **kw)
    in_memory = _repair(tmp_path, src, model_path, in_memory=True, **kw)
    (r1, a, m1), (r2, b, m2) = streamed, in_memory
    assert (r1.voids, r1.filled_pixels, r1.left_pixels) == (r2.voids, r2.filled_pixels,
                                                             r2.left_pixels)
    assert r1.filled_pixels > 1000 and (r1.left_pixels > 0) == bool(max_void)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = np.isfinite(a)
    np.testing.assert_allclose(a[ok], b[ok], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(a[m1 == 0], holed[m1 == 0])   # data kept exactly
    # and the network did change the first fill in the voids
    first = inpaint(holed, m1 == 1)
    assert np.abs(a[m1 == 1] - first[m1 == 1]).max() > 1e-2


def test_streamed_scaling_constants_equal_whole_raster_fit(dems_dir):
    with rasterio.open(dems_dir / SRTM) as ds:
        dem = read_band(ds, 1)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    der = compute_derivatives(dem, grid, DSHAT_DERIVATIVES)
    fit = StreamedFit(DSHAT_DERIVATIVES)
    rows = np.array_split(np.arange(dem.shape[0]), 7)
    for second in (False, True):
        if second and not fit.second_pass():
            break
        for r in rows:
            for name, values in der.items():
                (fit.add2 if second else fit.add)(name, values[r[0]:r[-1] + 1])
    assert fit.result() == NormaliserSet.fit(der)


def test_void_distance_equals_whole_raster_edt(dems_dir):
    with rasterio.open(dems_dir / SAGEHEN) as ds:
        z = read_band(ds, 1)[:300, :300]
    voids = synthetic_voids(z, np.random.default_rng(9), coverage=0.15)
    classes, n, _ = classify_voids(np.where(voids, np.nan, z))
    fill = classes == FILLED
    assert n > 5
    np.testing.assert_array_equal(vs.void_distance(fill),
                                  ndimage.distance_transform_edt(fill).astype(np.float32))


def _mosaic(dems_dir, path, size, seed):
    """size² of real terrain (Sagehen mirrored), 1 % synthetic voids."""
    with rasterio.open(dems_dir / SAGEHEN) as ds:
        z = read_band(ds, 1)[:256, :256]
        t = ds.transform
    tile = np.block([[z, z[:, ::-1]], [z[::-1], z[::-1, ::-1]]])
    reps = -(-size // tile.shape[0])
    dem = np.tile(tile, (reps, reps))[:size, :size].copy()
    dem[synthetic_voids(dem, np.random.default_rng(seed), coverage=0.01, max_size=12)] = np.nan
    grid = Grid(t, size, size, "EPSG:26911")
    write_array(str(path), dem, grid)
    return path


def _phase_peaks(tmp_path, src_path, model_path):
    """tracemalloc peaks (bytes) of the global pass and of the streamed phase."""
    from demsr.core.nets import checkpoint

    model = checkpoint.load(str(model_path)).build_for_inference("cpu")
    halo = int(model.halo)
    src = open_dem(str(src_path))
    out, mask = str(tmp_path / "o.tif"), str(tmp_path / "m.tif")
    profiles = [(out, gtiff_profile(src.grid, -32768.0)),
                (mask, gtiff_profile(src.grid, 255, dtype="uint8"))]
    infer = vm.batch_infer(model, "cpu")
    tracemalloc.start()
    try:
        with vs.scratch_for(out) as scratch:
            gp = vs.global_pass(src, 0.0, halo, 64, vm.MIN_TILE, 3, scratch, Monitor())
            global_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            with atomic_outputs(profiles) as writers:
                vs.write_streamed(src, gp, infer, halo, 2, writers, 255, Monitor())
            stream_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(gp.tiles) > 10
    return global_peak, stream_peak


def test_streamed_phase_memory_does_not_grow_with_the_raster(tmp_path, dems_dir, model_path):
    """384² and 768² (4×) with the same void density, 64-px tiles in 256-px blocks: the
    streamed phase's peak stays flat; the global pass (flow routing) is bounded per pixel."""
    small = _phase_peaks(tmp_path, _mosaic(dems_dir, tmp_path / "s.tif", 384, 1), model_path)
    big = _phase_peaks(tmp_path, _mosaic(dems_dir, tmp_path / "b.tif", 768, 2), model_path)
    print(f"global pass {small[0] / 384 ** 2:.1f} / {big[0] / 768 ** 2:.1f} B/px; "
          f"streamed phase {small[1] / 1e6:.1f} / {big[1] / 1e6:.1f} MB")
    assert big[1] < 1.5 * small[1]                    # 4× the pixels, not 4× the memory
    # the global pass grows with the raster, at most by its documented bytes per pixel
    assert big[0] - small[0] < vs.GLOBAL_BYTES_PER_PIXEL * (768 ** 2 - 384 ** 2)
    assert big[0] > 4 * big[1]  # what stays global is the part that dominates here


def test_cancel_during_flow_routing_leaves_nothing_running_or_written(tmp_path, dems_dir,
                                                                    model_path):
    """Flow routing runs in a second thread beside the rest of the global pass: a cancel
    it sees stops the run, no output or temporary file stays, no thread outlives the run."""
    import os
    import threading

    from demsr.core.errors import Cancelled

    src = tmp_path / "in" / "holed.tif"
    src.parent.mkdir()
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 300, 300, seed=3, coverage=0.01)
    from_flow = []

    def cancelled():
        if threading.current_thread().name.startswith("demsr-beside"):
            from_flow.append(1)
        return len(from_flow) >= 3

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Cancelled):
        vr.voidrepair(vr.VoidRepairRequest(str(src), str(out / "o.tif"), str(out / "m.tif"),
                                           model_path=str(model_path), device="cpu"),
                      Monitor(cancelled=cancelled))
    assert len(from_flow) >= 3                     # flow routing did check, in its thread
    assert os.listdir(out) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("demsr-beside")]


def test_progress_only_grows_and_comes_from_the_calling_thread(tmp_path, dems_dir, model_path):
    """Flow routing reports from its own thread; the run's progress still reaches the
    caller's monitor from the caller's thread, in order, up to 1."""
    import threading

    src = tmp_path / "holed.tif"
    holed_dem(dems_dir / SAGEHEN, src, 100, 100, 300, 300, seed=4, coverage=0.01)
    seen = []
    vr.voidrepair(vr.VoidRepairRequest(str(src), str(tmp_path / "o.tif"), str(tmp_path / "m.tif"),
                                       model_path=str(model_path), device="cpu"),
                  Monitor(progress=lambda f: seen.append((threading.get_ident(), f))))
    values = [f for _, f in seen]
    assert {t for t, _ in seen} == {threading.get_ident()}
    assert values == sorted(values) and values[-1] == 1.0
    assert len(set(values)) > 5
