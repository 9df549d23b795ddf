"""The checkout's layout, for tests that read its files or start another Python.

The tests' own Python (the venv of `make venv`) imports this checkout's `demsr` from src/
(an editable install); QGIS's Python (/usr/bin/python3) gets src/ on PYTHONPATH, as QGIS
gets its plugins folder on sys.path."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "demsr"  # the plugin folder: what `make install` copies, with LICENSE, README
SYS_PYTHON = "/usr/bin/python3"  # the Python QGIS runs on Debian


def system_python_env(**extra: str) -> dict:
    """This process's environment plus `extra`, with src/ first on PYTHONPATH."""
    out = dict(os.environ, **extra)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), out.get("PYTHONPATH")) if p)
    return out


def run_qgis_script(script: Path, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """Runs a helper script with the Python QGIS runs, outside this pytest process (which
    already imports the working tree as `demsr`)."""
    return subprocess.run([SYS_PYTHON, str(script), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)
