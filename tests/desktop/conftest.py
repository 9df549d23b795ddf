"""Desktop fixtures: the plugin ZIP built by scripts/package.py, and a fresh QGIS profile."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYS_PYTHON = "/usr/bin/python3"  # the Python QGIS runs on Debian


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory) -> Path:
    """dist ZIP built from the working tree, as `make package` builds it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([SYS_PYTHON, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    zips = list(out.glob("demsr-*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


def run_qgis_script(script: Path, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """Runs a helper script with the Python QGIS runs, outside this pytest process (which
    already imports the working tree as `demsr`)."""
    return subprocess.run([SYS_PYTHON, str(script), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


sys.path.insert(0, str(Path(__file__).parent))
