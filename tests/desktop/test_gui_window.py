"""A real QGIS desktop window (Xvfb, fresh profile): install the ZIP through the Plugin
Manager's code, open the menu, run Super-resolve DEM from its dialog, check the new layer
and the screenshots."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def not_blank(path: Path) -> int:
    """Distinct colours on a 64×64 grid of the image; a blank/black grab has 1 or 2."""
    from qgis.PyQt.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull(), path
    colours = {img.pixel(int(x * (img.width() - 1) / 63), int(y * (img.height() - 1) / 63))
               for x in range(64) for y in range(64)}
    return len(colours)


@pytest.fixture(scope="module")
def gui_run(plugin_zip, tmp_path_factory, dems_dir):
    if not shutil.which("xvfb-run") or not shutil.which("qgis"):
        pytest.skip("needs qgis and xvfb-run")
    deps = os.environ.get("DEMSR_DEPS_DIR")
    if not deps or not Path(deps, "torch").is_dir():
        pytest.skip("needs torch in DEMSR_DEPS_DIR for the model run")
    out = tmp_path_factory.mktemp("gui")
    import importlib.util
    spec = importlib.util.spec_from_file_location("top_conftest", HERE.parent / "conftest.py")
    top = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top)
    write_crop = top.write_crop
    dem = write_crop(dems_dir / "oso_landslide_lidar_1.83m.tif", out / "lidar_2m.tif",
                     200, 300, 160, 200)
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH", "DISPLAY")}
    env.update(DEMSR_GUI_OUT=str(out), DEMSR_GUI_ZIP=str(plugin_zip), DEMSR_GUI_DEM=str(dem),
               HOME=str(out / "home"), DEMSR_DEPS_DIR=deps)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--nologo",
           "--noversioncheck", "--profiles-path", str(out / "profiles"), "--code",
           str(HERE / "_gui_session.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    res_file = out / "result.json"
    assert res_file.is_file(), proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(res_file.read_text())
    assert "error" not in result, result["error"]
    return out, result


def test_zip_installs_through_the_plugin_manager_and_adds_a_menu(gui_run, tmp_path):
    out, r = gui_run
    assert r["installed_dir"] and r["active"]
    assert r["menu"] == ["Super-resolve DEM…", "Void repair/SR (DS-HAT)…",
                         "Terrain derivatives…", "Evaluate DEM…", "Train DEM SR…",
                         "Install / repair dependencies…", "Status & dependencies…"]
    assert r["toolbar_button"]
    assert r["target_decimals"] >= 9


def test_super_resolve_from_its_dialog_loads_a_named_styled_layer(gui_run):
    out, r = gui_run
    assert r["run_finished"], r
    assert r["output_layers"] == ["lidar_2m ×2 model", "lidar_2m ×2 model hillshade"]
    assert r["output_pseudocolor"]
    assert r["output_extent"] == r["input_extent"]
    assert r["output_width"] == 2 * r["input_width"]
    lo, hi = r["output_stretch"]
    assert lo < hi


def test_void_repair_from_its_dialog_fills_the_holes_in_the_background(gui_run):
    """Void repair run from its menu entry in the QGIS window (a QGIS task; flow routing in
    a second thread inside it): the holes are filled, the rest kept, the layers loaded."""
    out, r = gui_run
    assert r["voidrepair_finished"], r.get("voidrepair_log")
    assert r["voidrepair_nodata_in_holes"] == 0 and r["holes"] > 100
    assert r["voidrepair_kept_outside"]
    assert "Wrote" in r["voidrepair_log"], r["voidrepair_log"]
    assert r["voidrepair_progress"] in (0, 100)   # finished (QGIS resets the bar when done)
    assert len(r["voidrepair_layers"]) >= 2, r["voidrepair_layers"]


def test_status_and_missing_torch_message(gui_run):
    out, r = gui_run
    assert "Bundled models" in r["status_text"] and "demsr_fast_x2.pt" in r["status_text"]
    assert "Device used" in r["status_text"]
    assert r["message_pushed"] and not r["message_again"]
    assert r["install_button"] == "Install ONNX Runtime or PyTorch…"
    # the first choice for running models (no NVIDIA GPU here)
    assert r["installer_python"] and r["installer_build"] == "onnxruntime"


def test_screenshots_are_not_blank(gui_run):
    out, r = gui_run
    names = {Path(p).name for p in r["screenshots"]}
    assert {"menu.png", "dialog.png", "result.png", "voidrepair.png", "status.png",
            "installer.png"} <= names
    for p in r["screenshots"]:
        assert not_blank(Path(p)) > 20, p
