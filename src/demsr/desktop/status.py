"""What the Status & dependencies dialog shows: versions, device, bundled models.

Collected as plain rows so it can be tested without a window; torch is imported only here,
when the user asks for the status."""
from __future__ import annotations

import configparser
import csv
import html
import os
import sys

from .. import dependency_dir
from ..core.nets import bundled, coverage
from ..core.torch_policy import torch_state

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plugin_version() -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return cfg["general"].get("version", "?")


def held_out_figures(metrics_csv: str, baseline: str = "Lanczos") -> str:
    """The saved epoch's validation (held-out blocks) RMSE against the baseline it corrects:
    the epoch with the lowest validation ratio, as training chose it (core/training/state.py),
    else with the lowest RMSE (files written before the ratio was recorded)."""
    try:
        with open(metrics_csv, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("val_rmse")]
    except OSError:
        return "no metrics file"
    if not rows:
        return "no metrics"
    key = "val_ratio" if all(r.get("val_ratio") for r in rows) else "val_rmse"
    best = min(rows, key=lambda r: float(r[key]))
    rmse, base = float(best["val_rmse"]), float(best["val_rmse_baseline"])
    return (f"held-out RMSE {rmse:.2f} m vs {baseline} {base:.2f} m "
            f"({100 * (rmse / base - 1):+.1f} %, epoch {best['epoch']})")


def served_by_model() -> dict:
    """{model file: [factor clauses]} from the bundled rule (bundled.RULE), adjacent
    intervals of one model with one finish merged."""
    spans: dict = {}
    for r in bundled.RULE:
        runs = spans.setdefault(r.model, [])
        if runs and not r.exact and not runs[-1].exact and runs[-1].finish == r.finish \
                and runs[-1].hi == r.lo:
            runs[-1] = bundled.Route(runs[-1].lo, r.hi, r.model, r.scale, r.finish)
        else:
            runs.append(r)
    return {model: [r.factors_text() + (f" (×{r.scale} network, then "
                                        f"{coverage.FINISH_WORDS[r.finish]})" if r.finish else "")
                    for r in runs] for model, runs in spans.items()}


def bundled_models() -> list:
    """(file, what it serves, held-out figures) for each model in resources/models."""
    rows = []
    for model, clauses in served_by_model().items():
        path = os.path.join(bundled.MODELS_DIR, model)
        if os.path.isfile(path):
            rows.append((model, "Super-resolve DEM: " + "; ".join(clauses),
                         held_out_figures(path[:-3] + "_metrics.csv")))
    if os.path.isfile(bundled.DSHAT_MODEL):
        rows.append((os.path.basename(bundled.DSHAT_MODEL),
                     "Void repair/SR, any target grid (trained ×1 and ×2)",
                     held_out_figures(bundled.DSHAT_MODEL[:-3] + "_metrics.csv",
                                      "first fill (biharmonic + Lanczos)")))
    return rows


def device_rows() -> list:
    """The device and the runtime that run models (core/backends.choose), and what trains."""
    from ..core import backends
    from ..core.errors import RuntimeMissing

    state = torch_state()
    have_ort = bool(backends.installed_version(backends.ONNX))
    if not have_ort and not state.usable:
        if state.installed:  # too old, and no ONNX Runtime either
            return [("Device", "none: " + state.problem() + "; ONNX Runtime is not installed "
                     "either")]
        return [("Device", "none: " + str(RuntimeMissing()))]
    from ..core.devices import select_device
    try:
        choice = select_device("auto")
    except Exception as exc:  # a broken runtime (DLL load failure) lands here
        return [("Device", f"the runtime fails to load: {exc}")]
    rows = [("Device used", choice.description),
            ("Runs the models", backends.runtime_text(choice.backend)
             + (" (faster on the CPU; PyTorch is used for GPUs)"
                if choice.backend == backends.ONNX and state.usable else ""))]
    rows.append(("Trains models", backends.runtime_text(backends.TORCH) if state.usable
                 else "needs PyTorch (Install / repair dependencies…, PyTorch build)"))
    if choice.note:  # "no GPU used: <why>": the label already says it
        rows.append(("Why no GPU", choice.note.split("no GPU used: ", 1)[-1]))
    return rows


def ort_version() -> str:
    from ..core.backends import ONNX, installed_version

    return installed_version(ONNX)


def qgis_version() -> str:
    """QGIS's version, or why there is none (a plain Python: the status is Qt-free)."""
    try:
        from qgis.core import Qgis
    except ImportError:
        return "not importable from this Python"
    return Qgis.QGIS_VERSION


def collect() -> list:
    """[(section, [(label, value), ...]), ...]; needs no window (nor QGIS)."""
    import numpy

    state = torch_state()
    from .installer.cuda import detect_nvidia
    from .installer.interpreter import find_python
    gpu = detect_nvidia()
    python, tried = find_python()  # the interpreter the installer runs pip with
    versions = [
        ("Plugin", plugin_version()),
        ("QGIS", qgis_version()),
        ("Python", f"{sys.version.split()[0]} "
                   f"({python or 'not found; tried: ' + ', '.join(tried)})"),
        ("NumPy", numpy.__version__),
        ("PyTorch", f"{state.version} ({state.location})" if state.installed
         else "not installed"),
        ("ONNX Runtime", ort_version() or "not installed"),
        ("Dependency folder", dependency_dir()),
        ("NVIDIA driver", f"{gpu.name}, driver {gpu.driver}, CUDA {gpu.cuda}" if gpu
         else "none found (nvidia-smi)"),
    ]
    if state.too_old:
        versions.append(("Problem", state.problem()))
    models = [(name, f"{what}: {figures}") for name, what, figures in bundled_models()]
    return [("Versions", versions), ("Compute device", device_rows()),
            ("Bundled models", models)]


def to_html(sections: list) -> str:
    parts = []
    for title, rows in sections:
        parts.append(f"<h3>{html.escape(title)}</h3><table cellspacing='4'>")
        parts += [f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>"
                  for k, v in rows]
        parts.append("</table>")
    return "".join(parts)
