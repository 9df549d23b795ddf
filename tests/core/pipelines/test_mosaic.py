"""Mosaics on Dask distributed: tiles of one DEM super-resolved by real worker processes (a
LocalCluster of the run's own, or a second local scheduler given by address) equal the
merged DEM super-resolved at once (voids across the seams included); reruns skip finished
tiles; a worker killed with SIGKILL mid-tile or a cancel leaves no half-written file."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rasterio

import demsr  # noqa: F401 - puts the private torch folder on sys.path

from demsr.core.errors import Cancelled, DemSrError  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.pipelines.mosaic import MosaicRequest, run_mosaic  # noqa: E402
from demsr.core.pipelines.mosaic.plan import WORK  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.grid import Grid  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402


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
    out = folder / (f"merged_{kw.get('method')}_{kw.get('target_resolution')}_"
                    f"{kw.get('scale')}.tif")
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


def _req(tiles, out, workers=1, scheduler=None, **sr):
    """A mosaic request; `sr` are the engine's settings (SuperResolveRequest's fields)."""
    return MosaicRequest(tiles, str(out), SuperResolveRequest("", "", **sr), workers=workers,
                         scheduler=scheduler)


@pytest.fixture(scope="module")
def cluster():
    """A second scheduler on this machine with 2 worker processes, used by address."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def _leftovers(folder):
    """Hidden partial files or a work folder left behind."""
    return [n for n in os.listdir(folder) if n.startswith(".") and n != ".demsr_mosaic.json"]


def test_local_cluster_of_two_workers_equals_the_merged_raster_then_rerun_skips(split,
                                                                              tmp_path):
    folder, tiles = split
    out = tmp_path / "x2"
    model = dict(method="model", device="cpu", tile_size=128)
    res = run_mosaic(_req(tiles, out, workers=2, **model))
    assert res.computed == 4 and res.skipped == 0 and res.output_pixels == 640 * 480
    assert sorted(os.listdir(out)) == [".demsr_mosaic.json", "mosaic.vrt", "ne_x2.tif",
                                       "nw_x2.tif", "se_x2.tif", "sw_x2.tif"]
    _same(res.vrt_path, _merged(folder, method="model", scale=2), 1e-3)
    stamps = {n: os.stat(out / n).st_mtime_ns for n in os.listdir(out) if n.endswith(".tif")}
    again = run_mosaic(_req(tiles, out, workers=2, **model))
    assert again.computed == 0 and again.skipped == 4
    assert stamps == {n: os.stat(out / n).st_mtime_ns for n in stamps}  # not rewritten
    os.remove(out / "se_x2.tif")
    with open(out / "nw_x2.tif", "r+b") as f:  # a damaged tile is not "done"
        f.truncate(2000)
    third = run_mosaic(_req(tiles, out, workers=1, **model))
    assert third.computed == 2 and third.skipped == 2
    _same(third.vrt_path, _merged(folder, method="model", scale=2), 1e-3)
    with pytest.raises(DemSrError, match="other inputs or settings"):
        run_mosaic(_req(tiles, out, method="lanczos"))


def test_non_integer_factor_from_a_vrt_on_a_scheduler_by_address(split, tmp_path, cluster):
    from osgeo import gdal

    folder, tiles = split
    vrt = str(tmp_path / "in.vrt")
    gdal.BuildVRT(vrt, tiles).FlushCache()
    res = run_mosaic(_req([vrt], tmp_path / "tr", scheduler=cluster.scheduler_address,
                          method="lanczos", target_resolution=6.4, scale=None, tile_size=64))
    assert res.computed == 4
    _same(res.vrt_path, _merged(folder, method="lanczos", target_resolution=6.4, scale=None),
          1e-4)


def test_blended_factor_on_a_scheduler_by_address(split, tmp_path, cluster):
    """10 m → 4 m (×2.5): the bundled models' mean of two routes (core/pipelines/blend.py)
    stays seamless across the workers' windows."""
    folder, tiles = split
    res = run_mosaic(_req(tiles, tmp_path / "b", scheduler=cluster.scheduler_address,
                          method="model", target_resolution=4.0, scale=None, tile_size=64))
    assert res.computed == 4
    _same(res.vrt_path, _merged(folder, method="model", target_resolution=4.0, scale=None),
          2e-3)


def _writing(pid, work):
    """The files under `work` that process `pid` holds open (its tile's partial output)."""
    try:
        names = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []
    return [n for n in names if n.startswith(str(work)) and not n.endswith(".vrt")]


def test_worker_killed_mid_tile_is_retried_without_a_partial_file(split, tmp_path, cluster):
    """SIGKILL a worker while it writes a tile: Dask runs that task again on a worker, the
    mosaic still equals the merged raster, and no partial file remains anywhere."""
    distributed = pytest.importorskip("distributed")
    folder, tiles = split
    out = tmp_path / "kill"
    with distributed.Client(cluster.scheduler_address) as client:
        pids = set(client.run(os.getpid).values())
    box = {}

    def run():
        try:
            box["result"] = run_mosaic(_req(tiles, out, scheduler=cluster.scheduler_address,
                                            method="model", device="cpu", tile_size=64))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        for pid in pids:
            files = _writing(pid, out / WORK)
            if files:
                os.kill(pid, signal.SIGKILL)
                killed = (pid, files)
                break
        time.sleep(0.005)
    thread.join(300)
    assert killed is not None, "no worker was caught writing a tile"
    assert "error" not in box, box.get("error")
    res = box["result"]
    assert res.computed == 4
    assert not os.path.exists(f"/proc/{killed[0]}/status") or \
        open(f"/proc/{killed[0]}/status").read().find("zombie") >= 0
    _same(res.vrt_path, _merged(folder, method="model", scale=2), 1e-3)
    assert sorted(os.listdir(out)) == [".demsr_mosaic.json", "mosaic.vrt", "ne_x2.tif",
                                       "nw_x2.tif", "se_x2.tif", "sw_x2.tif"]


def test_cancel_keeps_finished_tiles_and_no_partial_file(split, tmp_path, cluster):
    _, tiles = split
    out = tmp_path / "cancel"
    done = []
    mon = Monitor(progress=done.append, cancelled=lambda: bool(done))
    with pytest.raises(Cancelled):
        run_mosaic(_req(tiles, out, scheduler=cluster.scheduler_address, method="lanczos",
                        tile_size=64), mon)
    # the tiles finished by then are kept (all four when they all ended within one poll of
    # the scheduler: a loaded machine decides that), never the VRT nor a partial file
    kept = [n for n in os.listdir(out) if not n.startswith(".")]
    assert 1 <= len(kept) <= 4 and "mosaic.vrt" not in kept
    assert _leftovers(out) == []


def test_command_line_on_a_scheduler_by_address(split, tmp_path, cluster):
    """python -m demsr mosaic … --scheduler ADDRESS, as a user runs it (this Python imports
    the checkout's demsr: make venv installs it)."""
    folder, tiles = split
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "demsr", "mosaic", *tiles, "--out", str(out), "--scale", "2",
           "--method", "lanczos", "--tile-size", "64", "--scheduler", cluster.scheduler_address]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "100 %" in run.stdout and "Mpx/s" in run.stdout
    _same(str(out / "mosaic.vrt"), _merged(folder, method="lanczos", scale=2), 1e-4)
    both = subprocess.run(cmd + ["--workers", "2"], capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_ctrl_c_stops_the_command_line_and_leaves_no_partial_file(split, tmp_path):
    """Ctrl-C in a terminal (SIGINT to the whole process group: the run and its local
    workers) while tiles are being written: the run stops them, keeps only complete tiles,
    writes no VRT and exits 1."""
    folder, tiles = split
    out = tmp_path / "ctrlc"
    # ×4 on PyTorch: at ×2 with ONNX Runtime these small tiles could all finish between two
    # looks for a partial file (so it failed in the Debian 13 root)
    env = dict(os.environ, DEMSR_BACKEND="torch")
    proc = subprocess.Popen([sys.executable, "-m", "demsr", "mosaic", *tiles, "--out", str(out),
                             "--method", "model", "--scale", "4", "--device", "cpu",
                             "--tile-size", "64", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True,
                            # as in a terminal: a background `make test` (CI, a script)
                            # hands its children SIGINT ignored, and Python then keeps it so
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        work = out / WORK
        if work.is_dir() and any(n.endswith(".partial.tif") for n in os.listdir(work)):
            os.killpg(proc.pid, signal.SIGINT)
            break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "interrupted (Ctrl-C)" in err, err
    kept = sorted(os.listdir(out))
    assert kept[0] == ".demsr_mosaic.json" and "mosaic.vrt" not in kept and len(kept) < 5
    merged, t = _merged(folder, method="model", scale=4)
    for name in kept[1:]:  # finished tiles only, each equal to its part of the merged raster
        got, tw = _read(out / name)
        c0, r0 = ~t * (tw.c, tw.f)
        part = merged[round(r0):round(r0) + got.shape[0], round(c0):round(c0) + got.shape[1]]
        np.testing.assert_allclose(got, part, atol=1e-3)


def test_tiles_on_different_grids_are_refused(split, tmp_path):
    folder, tiles = split
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(tiles[0]) as ds:
        data, t, crs = read_band(ds, 1), ds.transform, ds.crs
    write_array(str(shifted), data, Grid(t * t.translation(0.5, 0), data.shape[1],
                                         data.shape[0], crs))
    with pytest.raises(DemSrError, match="not on the pixel grid"):
        run_mosaic(_req([tiles[1], str(shifted)], tmp_path / "o", method="lanczos"))


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
