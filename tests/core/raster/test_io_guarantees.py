"""Outputs: a full disk is refused before work (with figures), a write that fails midway
leaves nothing and says why, a finished file is verified before it replaces the
destination, absurd grids are refused, partial files of killed runs are removed by the next
run of the same output, and paths that cannot hold files get advice, not a traceback."""
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from demsr.core.errors import DemSrError
from demsr.core.pipelines.derivatives import derive_to_files
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
from demsr.core.atomic import PARTIAL_SUFFIX, partial_path
from demsr.core.raster.write import (WriteFailed, gtiff_profile, remove_stale_partials,
                                     verify_written, write_array)
from demsr.core.raster.grid import Grid

import _system_helpers  # noqa: E402

SAGEHEN = "flopy_sagehen_10m.tif"


@pytest.fixture
def small_disk(tmp_path):
    with _system_helpers.small_disk(tmp_path, 2) as mnt:
        yield mnt


def test_full_disk_is_refused_before_work_with_figures(small_disk, crop):
    src = crop("oso_landslide_lidar_1.83m.tif")
    with pytest.raises(DemSrError, match=rf"disk full: \d+ MB needed, \d+ MB free at {small_disk}"):
        superresolve(SuperResolveRequest(str(src), str(small_disk / "o.tif"), scale=2,
                                         method="lanczos"))
    with pytest.raises(DemSrError, match=rf"disk full: \d+ MB needed, \d+ MB free at {small_disk}"):
        derive_to_files(str(src), 1, {"slope": str(small_disk / "s.tif"),
                                      "aspect": str(small_disk / "a.tif")})
    assert os.listdir(small_disk) == []


def _limited(script: str, limit: int) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python whose files cannot grow beyond `limit` bytes (a write
    past it fails as on a full disk, and SIGXFSZ is ignored)."""
    prelude = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("call", [
    "superresolve(SuperResolveRequest(SRC, OUT + '/o.tif', scale=2, method='lanczos', "
    "tile_size=256))",
    "derive_to_files(SRC, 1, {'slope': OUT + '/s.tif', 'aspect': OUT + '/a.tif', "
    "'plan_curvature': OUT + '/p.tif'})",
])
def test_write_failing_midway_leaves_nothing_and_says_why(crop, tmp_path, call):
    src = crop(SAGEHEN, 0, 0, 600, 600)
    out = tmp_path / "out"
    out.mkdir()
    proc = _limited(f"""
        from demsr.core.errors import DemSrError
        from demsr.core.pipelines.derivatives import derive_to_files
        from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve
        SRC, OUT = {str(src)!r}, {str(out)!r}
        try:
            {call}
            print("RESULT: success")
        except DemSrError as exc:
            print("RESULT:", exc)
    """, 300_000)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT:"))
    assert "failed" in line and "nothing was written" in line, line
    assert os.listdir(out) == []


def test_verification_catches_a_truncated_file(tmp_path):
    grid = Grid(Affine(10, 0, 0, 0, -10, 0), 600, 500, None)
    path = tmp_path / "a.tif"
    write_array(str(path), np.random.default_rng(0).random((500, 600), np.float32) * 1000, grid)
    profile = gtiff_profile(grid, -32768.0)
    verify_written(str(path), profile, "a.tif")  # a good file passes
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) * 2 // 3)
    with pytest.raises(WriteFailed, match="missing or cut off|cannot be read"):
        verify_written(str(path), profile, "a.tif")
    with open(path, "r+b") as fh:
        fh.truncate(0)
    with pytest.raises(WriteFailed, match="cannot be read back"):
        verify_written(str(path), profile, "a.tif")


def test_absurd_output_is_refused_before_work(tmp_path):
    """×16 of a 20000² raster: 320000² pixels, about 400 GB."""
    src = tmp_path / "big.tif"
    with rasterio.open(src, "w", driver="GTiff", width=20000, height=20000, count=1,
                       dtype="float32", crs="EPSG:32633", transform=Affine(10, 0, 0, 0, -10, 0),
                       tiled=True, SPARSE_OK=True, nodata=-9999) as ds:
        ds.write(np.ones((256, 256), np.float32), 1, window=((0, 256), (0, 256)))
    tracemalloc.start()  # numpy's buffers are traced: a tile or a row of output would show
    try:
        with pytest.raises(DemSrError, match=r"320,000×320,000 pixels \(410 GB"):
            superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), scale=16,
                                             method="lanczos"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16e6  # refused before any allocation: not even one 1024² tile (4 MB) × 4
    assert sorted(os.listdir(tmp_path)) == ["big.tif"]  # … and before any write


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partials_are_removed_and_live_ones_kept(tmp_path, crop):
    out = tmp_path / "o.tif"
    dead = tmp_path / f".o.tif.{_dead_pid()}-0123abcd{PARTIAL_SUFFIX}"
    old = tmp_path / f".o.tif.89abcdef{PARTIAL_SUFFIX}"  # an earlier version's name
    live = Path(partial_path(str(out)))                   # this process: still running
    other = tmp_path / f".other.tif.{_dead_pid()}-0123abcd{PARTIAL_SUFFIX}"  # another output
    for p in (dead, old, live, other):
        p.write_bytes(b"\0" * 4096)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    notes = []
    src = crop(SAGEHEN, 0, 0, 50, 50)
    from demsr.core.monitor import Monitor
    superresolve(SuperResolveRequest(str(src), str(out), scale=2, method="lanczos"),
                 Monitor(info=notes.append))
    assert not dead.exists() and not old.exists()
    assert live.exists() and other.exists()
    removed = [n for n in notes if "partial file left behind by an interrupted run" in n]
    assert len(removed) == 2, notes
    assert remove_stale_partials(str(out)) == []


def test_scratch_files_of_an_output_are_stale_partials_too(tmp_path):
    """Void repair's `.OUT.tif.inputs.PID-….partial.tif` (17 bytes per pixel) is removed by
    the next run of OUT.tif when its writer is gone, not kept for a day as an old name."""
    out = tmp_path / "o.tif"
    scratch = tmp_path / f".o.tif.inputs.{_dead_pid()}-0123abcd{PARTIAL_SUFFIX}"
    live = tmp_path / f".o.tif.inputs.{os.getpid()}-0123abcd{PARTIAL_SUFFIX}"
    for p in (scratch, live):
        p.write_bytes(b"x")
    assert remove_stale_partials(str(out)) == [scratch.name]
    assert live.exists()


def test_pid_reused_by_a_newer_process_is_stale(tmp_path):
    """The pid is alive but the process started after the file was written: stale."""
    out = tmp_path / "o.tif"
    stale = tmp_path / f".o.tif.{os.getppid()}-0123abcd{PARTIAL_SUFFIX}"
    stale.write_bytes(b"x")
    os.utime(stale, (1_000_000_000, 1_000_000_000))  # written in 2001, before any process here
    assert remove_stale_partials(str(out)) == [stale.name]


@pytest.mark.parametrize("where", ["/proc/demsr_out.tif", "/sys/demsr_out.tif"])
def test_output_where_no_file_can_be_made_is_explained(crop, where):
    if not os.path.isdir(os.path.dirname(where)):
        pytest.skip(f"{os.path.dirname(where)} does not exist here")
    src = crop(SAGEHEN, 0, 0, 50, 50)
    with pytest.raises(DemSrError, match="Cannot write|not writable|refused|cannot hold new"
                       ) as err:
        superresolve(SuperResolveRequest(str(src), where, scale=2, method="lanczos"))
    assert "a folder on the path does not exist" not in str(err.value)  # it does exist


def test_an_os_error_without_a_file_name_never_names_an_empty_path():
    import errno

    from demsr.core.errors import explain_os_error

    text = str(explain_os_error(OSError(errno.ENOSPC, "No space left on device")))
    assert "''" not in text and "disk is full" in text
