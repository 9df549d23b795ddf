"""Status & dependencies content, from this machine's real installation."""
import json
import re
import subprocess
import sys

from demsr.desktop import status
from demsr.core.torch_policy import TorchState, torch_state, version_tuple


def test_bundled_models_list_factors_and_held_out_figures():
    rows = status.bundled_models()
    names = [r[0] for r in rows]
    assert {"demsr_fast_x2.pt", "demsr_fast_x4.pt", "demsr_dshat.pt",
            "demsr_fast_x4_f1-2.pt", "demsr_fast_x4_f2-4.pt"} <= set(names)
    f12 = next(r for r in rows if r[0] == "demsr_fast_x4_f1-2.pt")
    assert "above ×1 up to ×2" in f12[1] and "area average" in f12[1]
    x2 = next(r for r in rows if r[0] == "demsr_fast_x2.pt")
    assert "×2" in x2[1]
    rmse, base = map(float, re.search(r"RMSE ([\d.]+) m vs Lanczos ([\d.]+) m", x2[2]).groups())
    assert rmse < base  # the bundled model beats its baseline on held-out blocks
    by_name = {r[0]: r for r in rows}
    f23, f24 = by_name["demsr_fast_x3_f2-3.pt"], by_name["demsr_fast_x4_f2-4.pt"]
    assert "above ×2 up to ×2.625 (×3 network, then cubic spline)" in f23[1]
    assert "above ×2.625 up to ×3.5 (×4 network, then cubic spline)" in f24[1]
    # the epoch shown is the one training saved (lowest validation ratio), as recorded
    from demsr.core.nets import bundled, checkpoint

    for name in ("demsr_fast_x3.pt", "demsr_fast_x4_f1-2.pt", "demsr_fast_x3_f2-3.pt"):
        saved = checkpoint.load(f"{bundled.MODELS_DIR}/{name}").provenance["epochs"]
        assert f"epoch {saved})" in by_name[name][2], (name, by_name[name][2], saved)


def test_collect_reports_versions_and_the_device(qgis_app):
    sections = dict(status.collect())
    versions = dict(sections["Versions"])
    assert versions["Plugin"] == status.plugin_version()
    assert versions["QGIS"].startswith("3.")
    state = torch_state()
    device = dict(sections["Compute device"])
    from demsr.core import backends

    ort = backends.installed_version(backends.ONNX)
    assert versions["ONNX Runtime"] == (ort or "not installed")
    if state.usable or ort:
        if state.usable:
            assert versions["PyTorch"].startswith(state.version)
        assert "Device used" in device and ("CPU" in device["Device used"]
                                            or "GPU" in device["Device used"])
        runs = device["Runs the models"]  # which runtime runs, by the rule of backends.choose
        assert runs.startswith(backends.runtime_text(backends.choose("auto")))
        assert runs.split(" (")[0] in device["Device used"]
        assert ("PyTorch" in device["Trains models"]) and (
            device["Trains models"].startswith("PyTorch ") == state.usable)
    else:
        assert "none" in device["Device"]
        assert "ONNX Runtime" in device["Device"] and "PyTorch" in device["Device"]
    from demsr.desktop.installer.interpreter import find_python

    # the interpreter the installer runs pip with (inside QGIS sys.executable may be a shim)
    assert versions["Python"].endswith(f"({find_python()[0]})"), versions["Python"]
    assert not device.get("Why no GPU", "").lower().startswith("no gpu")  # said once
    html = status.to_html(status.collect())
    assert "<table" in html and "demsr_fast_x4.pt" in html


def test_status_command_prints_what_the_dialog_shows():
    """`python -m demsr status` outside QGIS: the dialog's sections and rows, as JSON and as
    text."""
    def run(*args):
        res = subprocess.run([sys.executable, "-m", "demsr", "status", *args],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    shown = json.loads(run("--json"))
    assert list(shown) == ["Versions", "Compute device", "Bundled models"]
    assert shown["Versions"]["Plugin"] == status.plugin_version()
    models = {name: f"{what}: {figures}" for name, what, figures in status.bundled_models()}
    assert shown["Bundled models"] == models
    text = run()
    assert text.startswith("Versions\n  Plugin ") and "\nBundled models\n" in text
    assert all(f"  {name}  " in text for name in models)


def test_torch_state_flags_old_versions():
    assert version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert TorchState(True, "1.13.1", too_old=version_tuple("1.13.1") < (2, 0)).problem()
    assert "not installed" in TorchState(False).problem()


def test_without_any_runtime_the_status_names_both(monkeypatch):
    """A profile without torch and ONNX Runtime: the device row says how to get either."""
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(status, "torch_state", lambda: TorchState(False))
    row = dict(status.device_rows())["Device"]
    assert row.startswith("none") and "ONNX Runtime" in row and "PyTorch" in row
