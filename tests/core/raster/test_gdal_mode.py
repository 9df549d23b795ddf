"""GDAL ≥ 3.9 warns in any process that did not state its error mode: ours states it (return
codes, which the code checks) without overriding a process that chose exceptions."""
import subprocess
import sys

CODE = ("{before}"
        "from demsr.core.raster.gdal_mode import osgeo_gdal; gdal = osgeo_gdal(); "
        "print(gdal.GetUseExceptions()); print(gdal.Open('/nonexistent.tif') is None)")


def run(before=""):
    res = subprocess.run([sys.executable, "-W", "error", "-c",
                          CODE.format(before=before)],
                         capture_output=True, text=True, timeout=120)
    return res.returncode, res.stdout.split(), res.stderr


def test_return_codes_stated_without_a_warning():
    rc, out, err = run()  # -W error: a FutureWarning from GDAL would fail the run
    assert rc == 0, err[-2000:]
    assert out == ["0", "True"]


def test_a_process_that_chose_exceptions_keeps_them():
    rc, out, err = run("from osgeo import gdal; gdal.UseExceptions(); ")
    assert rc != 0 and "nonexistent" in err  # raised, not a None return
    assert out[:1] == ["1"]
