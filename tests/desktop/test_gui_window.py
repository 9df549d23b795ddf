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
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
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
    # UNCERTAINTY loads too, named after the input, on a colour ramp; σ > 0 in every filled
    # cell, nodata on every kept one
    sigma = r["sigma_layer"]
    assert sigma and sigma["name"].startswith("lidar_2m_holed") and "uncertainty" in \
        sigma["name"] and sigma["renderer"] == "singlebandpseudocolor", sigma
    assert r["sigma_in_holes_positive"] and r["sigma_nodata_outside"]


def test_custom_model_and_bundled_model_results_have_distinct_names(gui_run):
    out, r = gui_run
    assert r["custom_layers"] == ["lidar_2m ×2 model mine", "lidar_2m ×2 model mine hillshade"]
    assert set(r["custom_layers"]).isdisjoint(r["output_layers"])


def _block(names, wanted):
    """The positions of `wanted`, in this order and contiguous, in the layer tree list."""
    starts = [i for i in range(len(names)) if names[i:i + len(wanted)] == wanted]
    assert starts, (wanted, names)
    return list(range(starts[-1], starts[-1] + len(wanted)))


def test_void_repair_layers_mask_on_top_dem_and_hillshade_below(gui_run):
    out, r = gui_run
    names = r["voidrepair_tree"]
    # the mask on top (see-through but where filled), then σ (nodata but in the voids), the
    # DEM and its hillshade (layer_styles.ORDER)
    at = _block(names, ["lidar_2m_holed filled pixels", "lidar_2m_holed fill uncertainty (1σ, m)",
                        "lidar_2m_holed repaired", "lidar_2m_holed repaired hillshade"])
    assert at[-1] < names.index("lidar_2m_holed")         # above their input
    # read back from the loaded layer's renderer: kept cells transparent, fills see-through
    alpha = {int(k): v for k, v in r["mask_alpha"].items()}
    assert alpha[0] == 0 and 0 < alpha[1] < 255 and 0 < alpha[2] < 255


def test_terrain_derivatives_load_in_a_fixed_order_only_the_first_visible(gui_run):
    out, r = gui_run
    assert r["derivatives_finished"], r
    base = "lidar_2m_holed repaired"
    order = [f"{base} {k}" for k in ("streams", "slope", "aspect", "plan curvature",
                                     "profile curvature", "tangential curvature",
                                     "flow accumulation")]
    _block(r["derivatives_tree"], order)
    visible = set(r["derivatives_visible"])
    assert {order[0], order[1]} <= visible and not visible & set(order[2:])
    alpha = {int(k): v for k, v in r["stream_alpha"].items()}
    assert alpha == {0: 0, 1: 255}                        # streams opaque on transparent


def test_example_model_is_listed_valid_and_names_results_after_the_input(gui_run):
    out, r = gui_run
    assert r["example_model_id"], "the example model is not in the toolbox's Models"
    assert r["example_valid"] and not r["example_issues"], r["example_issues"]
    assert len(r["example_outputs"]) == 4 and all(r["example_outputs"].values())
    assert r["example_finished"], r.get("example_log")
    base = "lidar_2m_holed repaired ×2 model"
    _block(r["example_tree"], ["lidar_2m_holed filled pixels", f"{base} streams",
                               f"{base} slope", base, f"{base} hillshade"])
    assert not any(n.startswith("OUTPUT") for n in r["example_tree"]), r["example_tree"]


def test_help_opens_the_bundled_readme(gui_run):
    out, r = gui_run
    from qgis.PyQt.QtCore import QUrl

    url = QUrl(r["help_url"])
    assert url.isLocalFile() and Path(url.toLocalFile()).is_file()
    assert "Super-resolve DEM" in Path(url.toLocalFile()).read_text(encoding="utf-8")


def test_status_and_missing_torch_message(gui_run):
    out, r = gui_run
    assert "Bundled models" in r["status_text"] and "demsr_fast_x2.pt" in r["status_text"]
    assert "Device used" in r["status_text"]
    assert r["message_pushed"] and not r["message_again"]
    assert r["install_button"] == "Install ONNX Runtime or PyTorch…"
    # the first choice for running models (no NVIDIA GPU here)
    assert r["installer_python"] and r["installer_build"] == "onnxruntime"
    # after a successful install: the bar's warning gone, "PyTorch ready", labels updated
    assert r["bar_item_before_install"]
    assert not r["bar_item_after_install"] and not r["bar_button_after_install"]
    assert any("PyTorch ready" in t for t in r["bar_texts_after_install"])
    assert not any("not installed" in t for t in r["bar_texts_after_install"])
    assert r["installer_state_after"].startswith("PyTorch 2.")
    assert r["installer_message_after"].startswith("✔")


def test_screenshots_are_not_blank(gui_run):
    out, r = gui_run
    names = {Path(p).name for p in r["screenshots"]}
    assert {"menu.png", "dialog.png", "result.png", "voidrepair.png", "status.png",
            "installer.png", "voidrepair_window.png", "derivatives.png", "model.png",
            "installed.png"} <= names
    for p in r["screenshots"]:
        assert not_blank(Path(p)) > 20, p
