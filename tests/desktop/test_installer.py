"""The dependency installer for real: pip from the configured index into a fresh folder,
then the model path with torch from DEMSR_DEPS_DIR; and the ways it fails."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _checkout import system_python_env

from demsr.desktop.installer import constraints, cuda
from demsr.desktop.installer.pipinstall import InstallPlan, explain_pip_failure, run_plan

PY = "/usr/bin/python3"  # the Python QGIS runs here
KEPT = {"numpy": constraints.running_versions()["numpy"]}  # this system's (1.24.2, 2.2.4…)


def test_installs_a_real_package_and_verifies_it(tmp_path):
    target = tmp_path / "deps"
    lines = []
    res = run_plan(InstallPlan(PY, str(target), ["six"], verify_module="six",
                               kept=constraints.running_versions()), log=lines.append)
    assert res.ok, (res.message, lines[-20:])
    assert (target / "six.py").is_file() and res.version
    assert any("Successfully installed" in ln for ln in lines)
    assert not list(target.glob("numpy*"))           # QGIS's numpy is never shadowed


def test_install_task_streams_the_log_and_activates(qgis_app, tmp_path):
    """The QgsTask the dialog starts: lines arrive on the main thread, done() fires."""
    from qgis.core import QgsApplication

    from demsr.desktop.installer.task import InstallTask

    target = str(tmp_path / "deps")
    # tomli_w: nothing of ours (nor Dask, whose toolz other tests import) depends on it, so
    # it is not imported here before and must become importable without a restart.
    assert "tomli_w" not in sys.modules
    task = InstallTask(InstallPlan(PY, target, ["tomli_w"], verify_module="tomli_w", kept=KEPT))
    got, results = [], []
    task.line.connect(got.append)
    task.done.connect(results.append)
    QgsApplication.taskManager().addTask(task)
    deadline = time.time() + 180
    while not results and time.time() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.05)
    assert results and results[0].ok, results and results[0].message
    assert got and got[0].startswith("$ ")
    assert not results[0].restart_needed and target in sys.path
    import tomli_w  # importable in this process without restarting QGIS
    assert tomli_w.__file__.startswith(target)
    sys.path.remove(target)
    del sys.modules["tomli_w"]


def test_model_path_runs_with_the_installed_torch(tmp_path, crop):
    """With torch from the dependency folder (DEMSR_DEPS_DIR), the bundled ×2 model runs in
    a fresh Python, as QGIS would run it after the installer."""
    deps = os.environ.get("DEMSR_DEPS_DIR")
    if not deps or not Path(deps, "torch").is_dir():
        pytest.skip("no torch in DEMSR_DEPS_DIR")
    src = crop("flopy_sagehen_10m.tif", 40, 40, 48, 48)
    out = tmp_path / "x2.tif"
    code = ("import sys; import demsr, rasterio; "
            "from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve; "
            "superresolve(SuperResolveRequest(sys.argv[1], sys.argv[2], method='model'));"
            "print(rasterio.open(sys.argv[2]).shape)")
    res = subprocess.run([PY, "-c", code, str(src), str(out)],
                         capture_output=True, text=True, timeout=300,
                         env=system_python_env(DEMSR_DEPS_DIR=deps))
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "(96, 96)"


def test_no_network_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)       # no configured index/wheels
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    res = run_plan(InstallPlan(PY, str(tmp_path / "d"), ["six"], verify_module="six",
                               kept=KEPT), log=lambda _: None)
    assert not res.ok
    assert "cannot be reached" in res.message and "folder" in res.message


def test_pip_missing_says_what_to_do(tmp_path):
    venv = tmp_path / "nopip"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True)
    res = run_plan(InstallPlan(str(venv / "bin" / "python3"), str(tmp_path / "d"), ["six"],
                               verify_module="six", kept=KEPT), log=lambda _: None)
    assert not res.ok and "pip is not available" in res.message
    assert "python3-pip" in res.message


def test_conflicting_numpy_says_what_to_do(tmp_path):
    """A request that needs another NumPy than the one QGIS runs (its version is pinned)."""
    res = run_plan(InstallPlan(PY, str(tmp_path / "d"), [f"numpy!={KEPT['numpy']}"],
                               verify_module="numpy", kept=KEPT), log=lambda _: None)
    assert not res.ok
    assert "NumPy" in res.message and KEPT["numpy"] in res.message
    assert not (tmp_path / "d" / "numpy").exists()


def test_offline_wheels_folder(tmp_path, monkeypatch):
    """A folder of wheels, no index: pip gets --no-index --find-links."""
    wheels = tmp_path / "wheels"
    subprocess.run([PY, "-m", "pip", "download", "six", "--no-deps", "-q", "-d", str(wheels)],
                   check=True, capture_output=True)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # would fail if used
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    plan = InstallPlan(PY, str(tmp_path / "d"), ["six"], verify_module="six", kept=KEPT,
                       wheels_dir=str(wheels))
    assert "--no-index" in plan.pip_args("c.txt")
    assert run_plan(plan, log=lambda _: None).ok


def test_constraints_from_the_running_qgis(tmp_path):
    versions = constraints.running_versions()
    import numpy
    assert versions["numpy"] == numpy.__version__
    text = Path(constraints.write_constraints(str(tmp_path / "c.txt"), versions)).read_text()
    assert f"numpy=={numpy.__version__}" in text
    (tmp_path / "t" / "numpy").mkdir(parents=True)
    (tmp_path / "t" / "numpy-2.0.0.dist-info").mkdir()
    (tmp_path / "t" / "sympy").mkdir()
    removed = constraints.remove_shadowing(str(tmp_path / "t"), versions)
    assert sorted(removed) == ["numpy", "numpy-2.0.0.dist-info"]
    assert (tmp_path / "t" / "sympy").is_dir()


def test_torch_builds_use_the_matching_index():
    cpu = InstallPlan(PY, "/t", ["torch==2.13.0"], build="cpu", kept=KEPT).pip_args("c")
    cu = InstallPlan(PY, "/t", ["torch==2.13.0"], build="cu126", kept=KEPT).pip_args("c")
    if sys.platform != "darwin":
        assert "https://download.pytorch.org/whl/cpu" in cpu
        assert "https://download.pytorch.org/whl/cu126" in cu
    assert "--index-url" not in cu  # the user's own index stays


RECORDED_SMI = ("NVIDIA GeForce RTX 3060, 551.86, 12288\n",
                "| NVIDIA-SMI 551.86    Driver Version: 551.86    CUDA Version: 12.4 |")


def test_cuda_suggestion_from_recorded_nvidia_smi():
    gpu = cuda.parse_nvidia_smi(*RECORDED_SMI)
    assert gpu.name == "NVIDIA GeForce RTX 3060" and gpu.cuda == "12.4"
    assert gpu.memory_mib == 12288
    assert cuda.suggest_build(gpu, "win32")[0] == "cu124"
    newer = cuda.NvidiaGpu("H100", "570.1", "12.8")
    assert cuda.suggest_build(newer, "linux")[0] == "cu128"
    old = cuda.NvidiaGpu("GTX 970", "470.1", "11.4")
    build, why = cuda.suggest_build(old, "linux")
    assert build == "cpu" and "update the NVIDIA driver" in why
    assert cuda.suggest_build(None, "linux")[0] == "cpu"
    assert cuda.suggest_build(gpu, "darwin")[0] == "cpu"


def test_failure_messages_name_a_fix():
    plan = InstallPlan(PY, "/t", ["torch"], kept=KEPT)
    assert "proxy" in explain_pip_failure(["ProxyError('Cannot connect to proxy.')"], plan)
    assert "disk is full" in explain_pip_failure(["OSError: [Errno 28] No space left"], plan)


def test_extras_are_the_pins_make_deps_installs():
    """The installer's "extras" and `make deps` (scripts/requirements-extras.txt) install the
    same pinned Dask; the venv of the tests has them too."""
    from demsr.desktop.deps import EXTRAS

    root = Path(__file__).resolve().parents[2] / "scripts"
    pins = [line.split("#")[0].strip()
            for line in (root / "requirements-extras.txt").read_text().splitlines()]
    assert [p for p in pins if p] == EXTRAS
    assert "-r requirements-extras.txt" in (root / "requirements-test.txt").read_text()


def test_installer_dialog_adds_the_extras_only_when_ticked(qgis_app):
    from demsr.core.torch_policy import TORCH_PIN
    from demsr.desktop.deps import EXTRAS
    from demsr.desktop.installer.dialog import InstallerDialog

    dialog = InstallerDialog()
    dialog.build.setCurrentIndex(dialog.build.findData("cpu"))   # PyTorch
    assert dialog.plan().packages == [f"torch=={TORCH_PIN}"]
    dialog.extras.setChecked(True)
    assert dialog.plan().packages == [f"torch=={TORCH_PIN}", *EXTRAS]
    assert dialog.plan().verify_module == "torch"


def test_pip_output_pipe_is_closed():
    """No ResourceWarning (an open pipe) once a command has run, nor after a cancel."""
    import gc
    import warnings

    from demsr.desktop.installer.pipinstall import _stream

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out = _stream([PY, "-c", "print('a'); print('b')"], None, lambda _: None,
                          lambda: False)
        assert rc == 0 and out == ["a", "b"]
        rc, _ = _stream([PY, "-c", "import time; time.sleep(30)"], None, lambda _: None,
                        lambda: True)
        assert rc is None
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], \
        [str(w.message) for w in caught]


def test_first_choice_is_onnx_runtime_and_it_installs(qgis_app, tmp_path):
    """For a user who only runs models the dialog proposes ONNX Runtime first (with its
    download size); its plan really installs a working onnxruntime beside QGIS's NumPy."""
    from demsr.desktop.installer import dialog

    dlg = dialog.InstallerDialog()
    assert dlg.build.itemData(0) == dialog.ONNX_CHOICE
    if dialog.suggest_build(dialog.detect_nvidia())[0] == "cpu":  # no NVIDIA GPU here
        assert dlg.build.currentIndex() == 0, "ONNX Runtime is not the first choice"
    assert "ONNX Runtime" in dlg.build.itemText(0) and "MB" in dlg.build.itemText(0)
    assert any("PyTorch" in dlg.build.itemText(i) and "train" in dlg.build.itemText(i)
               for i in range(1, dlg.build.count()))
    plan = dlg.plan()
    assert plan.packages[0].startswith("onnxruntime") and plan.verify_module == "onnxruntime"
    assert "--extra-index-url" not in plan.pip_args("c.txt")  # PyPI (or the user's index)
    plan.target = str(tmp_path / "deps")
    plan.python = PY
    res = run_plan(plan, log=lambda _: None)
    assert res.ok, res.message
    assert (tmp_path / "deps" / "onnxruntime").is_dir()
    assert not list((tmp_path / "deps").glob("numpy*"))  # QGIS's numpy is never shadowed
    dlg.close()
