"""Evaluate's outputs appear together or not at all, its picture folder is never deleted
when it holds something the report did not write, nothing is left behind after a kill, and
undeclared fill values are named."""
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest
import rasterio

from demsr.core.errors import DemSrError
from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array

import _system_helpers

LIDAR = "oso_landslide_lidar_1.83m.tif"
WINDOW = (200, 300, 64, 64)
PICTURES = ("hillshades.png", "error_map.png", "error_window.png", "histogram.png",
            "error_vs_slope.png")


@pytest.fixture
def dem(crop):
    return str(crop(LIDAR, *WINDOW))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _outputs(folder):
    return {k: str(folder / n) for k, n in (("output_html", "r.html"), ("output_error", "e.tif"),
                                            ("output_table", "t.csv"),
                                            ("output_json", "m.json"))}


def test_picture_folder_holding_an_input_is_refused_and_kept(dem, tmp_path):
    """The issue's case: a DEM inside `<report>_files`, given as INPUT, was deleted."""
    out = tmp_path / "out"
    pictures = out / "r_files"
    pictures.mkdir(parents=True)
    inside = pictures / "dem.tif"
    inside.write_bytes(open(dem, "rb").read())
    (pictures / "notes.txt").write_text("mine")
    with pytest.raises(DemSrError, match="holds the input"):
        evaluate(EvaluationRequest(str(inside), dem, **_outputs(out)))
    assert sorted(os.listdir(pictures)) == ["dem.tif", "notes.txt"]
    assert sorted(os.listdir(out)) == ["r_files"]


def test_picture_folder_with_foreign_files_is_refused(dem, tmp_path):
    pictures = tmp_path / "r_files"
    pictures.mkdir()
    (pictures / "notes.txt").write_text("mine")
    with pytest.raises(DemSrError, match=r"files it did not write \('notes.txt'\)"):
        evaluate(EvaluationRequest(dem, dem, **_outputs(tmp_path)))
    assert os.listdir(pictures) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(dem), "r_files"])


def test_a_previous_report_is_replaced_whole(dem, tmp_path):
    outs = _outputs(tmp_path)
    evaluate(EvaluationRequest(dem, dem, window_size=32, **outs))
    pictures = tmp_path / "r_files"
    assert sorted(os.listdir(pictures)) == sorted(PICTURES)
    first = (pictures / "hillshades.png").stat().st_ino
    evaluate(EvaluationRequest(dem, dem, window_size=32, **outs))
    assert sorted(os.listdir(pictures)) == sorted(PICTURES)
    assert (pictures / "hillshades.png").stat().st_ino != first       # a new folder
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(dem), "r.html", "r_files", "e.tif", "t.csv", "m.json"])


def test_a_failure_in_the_report_leaves_no_output(dem, tmp_path):
    """The picture window is checked while the report is made, after the tables and the
    error raster: none of them may appear."""
    with rasterio.open(dem) as ds:
        x0, y0, x1, y1 = ds.bounds
    far = (x1 + 1000, y0, x1 + 2000, y1)
    with pytest.raises(DemSrError, match="picture window"):
        evaluate(EvaluationRequest(dem, dem, window=far, **_outputs(tmp_path)))
    assert os.listdir(tmp_path) == [os.path.basename(dem)]


def test_a_full_report_disk_is_refused_before_any_output(dem, tmp_path):
    with _system_helpers.small_disk(tmp_path, 2) as mnt:
        outs = _outputs(tmp_path)
        outs["output_html"] = str(mnt / "r.html")
        with pytest.raises(DemSrError, match=rf"disk full: .* free at {mnt}"):
            evaluate(EvaluationRequest(dem, dem, **outs))
        assert os.listdir(mnt) == []
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(dem), "small"])


def test_a_report_under_proc_is_refused_before_work_with_advice(dem, tmp_path):
    with pytest.raises(DemSrError, match=r"'/proc' cannot hold new files .* ordinary folder"):
        evaluate(EvaluationRequest(dem, dem, output_html="/proc/r.html",
                                   output_table=str(tmp_path / "t.csv")))
    assert os.listdir(tmp_path) == [os.path.basename(dem)]


def test_partials_of_a_killed_report_are_removed_by_the_next_run(dem, tmp_path):
    dead = _dead_pid()
    left = [tmp_path / f".r.html.{dead}-0123abcd.partial",
            tmp_path / f".t.csv.{dead}-0123abcd.partial",
            tmp_path / f".e.tif.{dead}-0123abcd.partial.tif"]
    for p in left:
        p.write_text("half")
    folder = tmp_path / f".r_files.{dead}-0123abcd.partial"
    folder.mkdir()
    (folder / "hillshades.png").write_bytes(b"half")
    evaluate(EvaluationRequest(dem, dem, window_size=32, **_outputs(tmp_path)))
    assert not any(p.exists() for p in left) and not folder.exists()


def test_a_killed_runs_baseline_scratch_folder_is_removed(dem):
    stale = os.path.join(tempfile.gettempdir(), f"demsr_eval_{_dead_pid()}-0123abcd")
    os.mkdir(stale)
    with open(os.path.join(stale, "lr.tif"), "wb") as fh:
        fh.write(b"half")
    mine = os.path.join(tempfile.gettempdir(), f"demsr_eval_{os.getpid()}-live0000")
    os.mkdir(mine)  # a run of this (living) process: kept
    try:
        evaluate(EvaluationRequest(dem, dem, compare_classical=True, classical_factor=2))
        assert not os.path.exists(stale)
        assert os.path.isdir(mine)
    finally:
        os.rmdir(mine)


def test_undeclared_fill_values_are_named(dem, tmp_path):
    with rasterio.open(dem) as ds:
        data = read_band(ds, 1)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    holed = data.copy()
    holed[10:20, 10:20] = -9999.0
    path = str(tmp_path / "holed.tif")
    write_array(path, holed, grid, nodata=-32768.0)  # -9999 is not declared as nodata
    r = evaluate(EvaluationRequest(path, dem))
    assert any("100 cells" in w and "-9999" in w and "nodata" in w for w in r.warnings)
    assert not evaluate(EvaluationRequest(dem, dem)).warnings


def test_a_run_killed_during_the_report_changes_no_output_and_the_next_run_cleans_up(
        dem, tmp_path):
    """SIGKILL while the pictures are drawn (progress past 90 %): the old report stays as it
    was, nothing new is visible; the next run removes the hidden leftovers."""
    outs = _outputs(tmp_path)
    (tmp_path / "r.html").write_text("old report")
    script = textwrap.dedent(f"""
        import os, signal, sys
        from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
        from demsr.core.monitor import Monitor

        def progress(f):
            if f >= 0.9:
                os.kill(os.getpid(), signal.SIGKILL)

        evaluate(EvaluationRequest({dem!r}, {dem!r}, window_size=32, **{outs!r}),
                 Monitor(progress=progress))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    visible = sorted(n for n in os.listdir(tmp_path) if not n.startswith("."))
    assert visible == sorted([os.path.basename(dem), "r.html"])
    assert (tmp_path / "r.html").read_text() == "old report"
    assert any(n.startswith(".") for n in os.listdir(tmp_path))  # the killed run's partials
    evaluate(EvaluationRequest(dem, dem, window_size=32, **outs))
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(dem), "r.html", "r_files", "e.tif", "t.csv", "m.json"])
