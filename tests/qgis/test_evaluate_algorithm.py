"""demsr:evaluate as users run it: processing.run in QGIS, and qgis_process."""
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import (QgsApplication, QgsFeature, QgsGeometry, QgsProcessingException,
                       QgsProcessingOutputHtml, QgsProcessingOutputNumber, QgsRectangle,
                       QgsVectorLayer)

from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array
from demsr.core.raster.grid import Grid

PARAMS = ("INPUT", "BAND", "REFERENCE", "REFERENCE_BAND", "COMPARE", "MASK", "EXTENT",
          "FILLED_MASK", "ALIGN", "RESAMPLING", "COMPARE_CLASSICAL", "CLASSICAL_FACTOR",
          "LOW_RES", "STREAM_THRESHOLD", "WINDOW", "WINDOW_SIZE", "OUTPUT_HTML", "OUTPUT_ERROR",
          "OUTPUT_TABLE", "OUTPUT_JSON")
NUMBERS = ("RMSE", "MAE", "BIAS", "P95", "MAX_ABS", "SLOPE_RMSE", "ASPECT_RMSE", "SSIM", "PSNR",
           "STREAM_RECALL", "STREAM_PRECISION")
LIDAR = "oso_landslide_lidar_1.83m.tif"


def _run(params, feedback=None):
    import processing
    return processing.run("demsr:evaluate", params, feedback=feedback)


def _shifted(src, dst, offset):
    with rasterio.open(src) as ds:
        data = read_band(ds, 1)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    write_array(str(dst), data + offset, grid)
    return str(dst)


def test_algorithm_declares_its_public_interface(provider):
    alg = QgsApplication.processingRegistry().algorithmById("demsr:evaluate")
    assert alg is not None and alg.displayName() == "Evaluate DEM"
    assert alg.group() == "Super-resolution"
    names = {p.name() for p in alg.parameterDefinitions()}
    assert set(PARAMS) <= names
    outs = {o.name(): o for o in alg.outputDefinitions()}
    for n in NUMBERS:
        assert isinstance(outs[n], QgsProcessingOutputNumber), n
    assert isinstance(outs["OUTPUT_HTML"], QgsProcessingOutputHtml)   # Results Viewer
    help_text = alg.shortHelpString()  # written with ids, shown with the form's labels
    labels = {p.name(): p.description() for p in alg.parameterDefinitions()}
    for name in PARAMS:
        assert f"<b>{labels[name]}</b> ({name})" in help_text, name
    for name in NUMBERS:
        assert name in help_text or outs[name].description() in help_text, name


def test_offset_dem_with_comparison_mask_and_report(provider, crop, tmp_path):
    ref = str(crop(LIDAR, 200, 300, 128, 128))
    res = _shifted(ref, tmp_path / "res.tif", 0.5)
    with rasterio.open(ref) as ds:
        b, epsg = ds.bounds, ds.crs.to_epsg()
    layer = QgsVectorLayer(f"Polygon?crs=EPSG:{epsg}", "mask", "memory")  # the lidar's CRS
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(b.left, b.bottom, (b.left + b.right) / 2,
                                                    b.top)))
    layer.dataProvider().addFeatures([f])
    out = _run({"INPUT": res, "REFERENCE": ref, "COMPARE": [ref], "MASK": layer,
                "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_TABLE": str(tmp_path / "t.csv"),
                "OUTPUT_JSON": str(tmp_path / "m.json"),
                "OUTPUT_ERROR": str(tmp_path / "err.tif")})
    assert out["BIAS"] == pytest.approx(0.5, abs=1e-4)
    assert out["RMSE"] == pytest.approx(0.5, abs=1e-4)
    assert out["SLOPE_RMSE"] < 1e-3 and out["SSIM"] > 0.99
    assert out["STREAM_RECALL"] in (1.0,) or np.isnan(out["STREAM_RECALL"])
    assert out["PIXELS"] == 128 * 64                     # the left half only
    # Python numbers, not NumPy scalars (NumPy >= 2.3): qgis_process --json writes those as ""
    numbers = [k for k in out if not k.startswith("OUTPUT")]
    assert len(numbers) > 10 and all(type(out[k]) in (float, int) for k in numbers), \
        {k: type(out[k]) for k in numbers}
    rows = list(csv.DictReader(open(out["OUTPUT_TABLE"])))
    assert rows[0]["dem"] == "res" and rows[1]["dem"].startswith("crop_oso")  # layer names
    assert float(rows[1]["rmse"]) == 0.0                  # the reference against itself
    text = Path(out["OUTPUT_HTML"]).read_text()
    for img in re.findall(r'<img src="([^"]+)"', text):
        assert (tmp_path / img).is_file()
    assert json.loads(Path(out["OUTPUT_JSON"]).read_text())["pixels"]["all"] == 128 * 64
    with rasterio.open(out["OUTPUT_ERROR"]) as ds:
        err = ds.read(1, masked=True)
    assert err.count() == 128 * 64 and np.allclose(err.compressed(), 0.5, atol=1e-4)


def test_bad_input_raises_processing_exception(provider, crop, tmp_path):
    a = str(crop(LIDAR, 0, 0, 64, 64))
    b = str(crop(LIDAR, 300, 300, 64, 64))
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        _run({"INPUT": a, "REFERENCE": b, "OUTPUT_HTML": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_qgis_process_with_classical_baselines(qgis_process, crop, tmp_path):
    """As the demo calls it: two COMPARE layers, classical baselines, JSON results."""
    ref = crop(LIDAR, 200, 300, 128, 128)
    res = _shifted(ref, tmp_path / "res.tif", 0.1)
    html = tmp_path / "eval.html"
    proc = qgis_process("--json", "run", "demsr:evaluate", "--", f"INPUT={res}",
                        f"REFERENCE={ref}", f"COMPARE={ref}", f"COMPARE={res}",
                        "COMPARE_CLASSICAL=true", f"OUTPUT_HTML={html}",
                        f"OUTPUT_TABLE={tmp_path / 't.csv'}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    payload = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert payload["results"]["RMSE"] == pytest.approx(0.1, abs=1e-4)
    assert html.is_file()
    names = [r["dem"] for r in csv.DictReader(open(tmp_path / "t.csv"))]
    assert len(names) == 6 and any(n.startswith("GDAL lanczos") for n in names)


def test_classical_baselines_without_torch(crop, tmp_path):
    """Evaluate DEM needs no torch, COMPARE_CLASSICAL included (block mean by GDAL then)."""
    import os
    import subprocess
    import sys

    ref = crop(LIDAR, 200, 300, 96, 96)
    script = f"""
import sys
sys.modules["torch"] = None
from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
r = evaluate(EvaluationRequest({str(ref)!r}, {str(ref)!r}, compare_classical=True))
print("LANCZOS", r.metrics["all"]["GDAL lanczos (block mean ×2)"]["rmse"])
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), timeout=120)
    assert "LANCZOS" in proc.stdout, proc.stderr[-2000:]
    from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate
    with_torch = evaluate(EvaluationRequest(str(ref), str(ref), compare_classical=True))
    expected = with_torch.metrics["all"]["GDAL lanczos (block mean ×2)"]["rmse"]
    assert float(proc.stdout.split("LANCZOS")[1]) == pytest.approx(expected, rel=1e-5)
