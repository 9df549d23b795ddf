"""QGIS-side fixtures: qgis_process running the plugin that `make install` put in the user's
profile."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def qgis_process():
    """Run scripts/qgis_process with the user's own QGIS profile (pytest-qgis points
    QGIS_CUSTOM_CONFIG_PATH at a temporary one for the in-process QgsApplication)."""
    env = {k: v for k, v in os.environ.items() if k != "QGIS_CUSTOM_CONFIG_PATH"}
    env["QT_QPA_PLATFORM"] = "offscreen"

    def run(*args, timeout=300):
        return subprocess.run([str(ROOT / "scripts" / "qgis_process"), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)
    return run
