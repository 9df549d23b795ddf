"""The example model (Void repair → Super-resolve → Terrain derivatives) runs headless with
qgis_process, from the plugin installed out of the ZIP into a fresh profile."""
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import rasterio

from _checkout import PACKAGE, ROOT

MODEL = PACKAGE / "resources" / "models" / "example_repair_sr_derivatives.model3"


def qgis_process(home: Path, *args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "QGIS_CUSTOM_CONFIG_PATH"}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([str(ROOT / "scripts" / "qgis_process"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_example_model_runs_with_qgis_process(plugin_zip, tmp_path, crop):
    deps = os.environ.get("DEMSR_DEPS_DIR")
    if not deps or not Path(deps, "torch").is_dir():
        pytest.skip("needs torch in DEMSR_DEPS_DIR")
    home = tmp_path / "home"
    plugins = home / ".local/share/QGIS/QGIS3/profiles/default/python/plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins)
    qgis_process(home, "plugins", "enable", "demsr")
    src = crop("flopy_sagehen_10m.tif", 300, 300, 64, 64)
    outs = {name: tmp_path / f"{name}.tif" for name in
            ("superresolved", "slope", "streams", "filled_pixels")}
    res = qgis_process(home, "--json", "run", str(MODEL), "--", f"dem={src}",
                       f"superresolve:superresolved={outs['superresolved']}",
                       f"derivatives:slope={outs['slope']}",
                       f"derivatives:streams={outs['streams']}",
                       f"repair:filled_pixels={outs['filled_pixels']}")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    results = json.loads(res.stdout[res.stdout.index("{"):])["results"]
    assert Path(results["derivatives:slope"]) == outs["slope"]
    with rasterio.open(src) as s, rasterio.open(outs["superresolved"]) as sr, \
            rasterio.open(outs["slope"]) as sl:
        assert (sr.height, sr.width) == (2 * s.height, 2 * s.width)
        assert sl.shape == sr.shape and sl.bounds == sr.bounds
        slope = sl.read(1, masked=True)
        assert 0 < slope.mean() < 90
