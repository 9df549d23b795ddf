"""Desktop fixtures: the plugin ZIP built by scripts/package.py, and a fresh QGIS profile."""
import subprocess
from pathlib import Path

import pytest

from _checkout import ROOT, SYS_PYTHON


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory) -> Path:
    """dist ZIP built from the working tree, as `make package` builds it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([SYS_PYTHON, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    zips = list(out.glob("demsr-*.zip"))
    assert len(zips) == 1, zips
    return zips[0]

