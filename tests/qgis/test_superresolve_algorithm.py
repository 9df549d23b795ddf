"""demsr:superresolve as users run it: processing.run in QGIS, and qgis_process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from qgis.core import (QgsApplication, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingOutputRasterLayer, QgsRasterLayer)

from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve



def _run(params):
    import processing

    return processing.run("demsr:superresolve", params)


def test_provider_lists_only_real_algorithms(provider):
    ids = {a.id() for a in provider.algorithms()}
    assert "demsr:superresolve" in ids
    alg = QgsApplication.processingRegistry().algorithmById("demsr:superresolve")
    assert alg.displayName() == "Super-resolve DEM"
    # runs in the toolbox's background thread, and the modeler sees the raster output
    assert not alg.flags() & QgsProcessingAlgorithm.Flag.FlagNoThreading
    outputs = {o.name(): o for o in alg.outputDefinitions()}
    assert isinstance(outputs["OUTPUT"], QgsProcessingOutputRasterLayer)
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"INPUT", "BAND", "SCALE", "MODEL", "DEVICE", "OUTPUT", "METHOD",
            "TARGET_RESOLUTION", "TILE_SIZE", "OVERLAP", "BATCH_SIZE"} <= names
    for name in names - {"OUTPUT"}:
        label = alg.parameterDefinition(name).description()  # help names the form's labels
        assert f"<b>{label}</b> ({name})" in alg.shortHelpString(), f"no help for {name}"
    from demsr.core.nets import bundled  # the help's bundled-model rule is the code's table

    assert bundled.rule_text() in alg.shortHelpString()
    assert all(r.model in bundled.rule_text() for r in bundled.RULE)


def test_processing_run_on_a_loaded_layer_equals_core(provider, crop, tmp_path):
    src = crop("flopy_sagehen_10m.tif", 100, 100, 300, 300)
    layer = QgsRasterLayer(str(src), "dem")
    assert layer.isValid()
    out = tmp_path / "out.tif"
    result = _run({"INPUT": layer, "SCALE": 2, "METHOD": "cubic", "TILE_SIZE": 128,
                   "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    superresolve(SuperResolveRequest(str(src), str(tmp_path / "core.tif"), scale=2,
                                     method="cubic"))
    with rasterio.open(out) as a, rasterio.open(tmp_path / "core.tif") as b:
        assert a.transform == b.transform and a.shape == (600, 600)
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_temporary_output_works_like_in_the_dialog(provider, crop):
    src = crop("pypi_lidar_dem_1m.tif", 0, 0, 100, 100)
    result = _run({"INPUT": str(src), "SCALE": 1.5625, "METHOD": "lanczos",
                   "OUTPUT": "TEMPORARY_OUTPUT"})
    with rasterio.open(result["OUTPUT"]) as ds:
        assert ds.shape == (156, 156)


@pytest.mark.parametrize("params,message", [
    ({"BAND": 4}, "Band 4 does not exist"),
    ({"SCALE": 1.0}, "above 1"),
    ({"METHOD": "cubic", "MODEL": "model.pt"}, "METHOD to 'model'"),
    ({"SCALE": 10}, "METHOD 'lanczos'"),  # the default METHOD=model covers (1, 8]
])
def test_bad_parameters_raise_processing_exceptions(provider, crop, tmp_path, params, message):
    src = crop("pypi_lidar_dem_1m.tif", 0, 0, 64, 64)
    (tmp_path / "model.pt").write_bytes(b"x")
    if "MODEL" in params:
        params = dict(params, MODEL=str(tmp_path / "model.pt"))
    full = {"INPUT": str(src), "OUTPUT": str(tmp_path / "o.tif")}
    full.update(params)
    with pytest.raises(QgsProcessingException, match=message):
        _run(full)
    assert not (tmp_path / "o.tif").exists()



@pytest.mark.slow
def test_qgis_process_runs_the_installed_plugin(qgis_process, crop, tmp_path):
    """The exact call from the README, through the plugin that `make install` put in QGIS."""
    src = crop("oggm_south_glacier_20m.tif")
    out = tmp_path / "out.tif"
    proc = qgis_process("--json", "run", "demsr:superresolve", "--",
                         f"INPUT={src}", "SCALE=2", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    payload = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert payload["results"]["OUTPUT"] == str(out)
    with rasterio.open(src) as s, rasterio.open(out) as o:
        assert o.shape == (2 * s.height, 2 * s.width) and o.crs == s.crs


@pytest.mark.slow
def test_qgis_process_reports_bad_input_and_fails(qgis_process, tmp_path):
    proc = qgis_process("run", "demsr:superresolve", "--", f"INPUT={tmp_path / 'none.tif'}",
                         "SCALE=2", f"OUTPUT={tmp_path / 'o.tif'}")
    assert proc.returncode != 0
    assert "INPUT" in proc.stdout + proc.stderr


def test_provider_loads_and_explains_itself_without_torch(tmp_path):
    """A QGIS without torch or ONNX Runtime: the provider loads, classical methods run, the
    model path says how to install either."""
    script = """
import sys
sys.modules["torch"] = None  # make `import torch` fail as on a machine without it
sys.modules["onnxruntime"] = None
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
from demsr.algorithms.provider import DemSrProvider
p = DemSrProvider(); QgsApplication.processingRegistry().addProvider(p)
print("ALGS", sorted(a.id() for a in p.algorithms()))
from demsr.core.devices import select_device
try:
    select_device("auto")
except Exception as e:
    print("ERR", e)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), timeout=120)
    assert "demsr:superresolve" in proc.stdout, proc.stderr[-2000:]
    assert "ERR Running a model needs ONNX Runtime or PyTorch" in proc.stdout
    assert "pip install" in proc.stdout


def test_runs_in_a_background_task_like_the_toolbox_dialog(provider, crop, tmp_path, qgis_app):
    """The dialog runs algorithms in a worker thread through QgsProcessingAlgRunnerTask."""
    import time

    from qgis.core import (QgsProcessingAlgRunnerTask, QgsProcessingContext,
                           QgsProcessingFeedback, QgsProject)

    src = crop("oggm_south_glacier_20m.tif")
    out = tmp_path / "task.tif"
    alg = QgsApplication.processingRegistry().createAlgorithmById("demsr:superresolve")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = QgsProcessingFeedback()
    progress = []
    feedback.progressChanged.connect(progress.append)
    task = QgsProcessingAlgRunnerTask(alg, {"INPUT": str(src), "SCALE": 2, "TILE_SIZE": 64,
                                            "OUTPUT": str(out)}, context, feedback)
    finished = []
    task.executed.connect(lambda ok, results: finished.append((ok, results)))
    QgsApplication.taskManager().addTask(task)
    deadline = time.time() + 120
    while not finished and time.time() < deadline:
        qgis_app.processEvents()
        time.sleep(0.02)
    assert finished and finished[0][0], "the background task did not succeed"
    assert finished[0][1]["OUTPUT"] == str(out) and out.exists()
    assert progress and max(progress) == 100


def test_chains_into_terrain_derivatives_like_a_model(provider, crop):
    """A modeler-style chain: the super-resolved output (a temporary layer) feeds
    demsr:derivatives, whose slope is on the finer grid."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    src = crop("longyearbyen_1995_20m_xdem.tif", 0, 0, 120, 140)
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    sr = processing.run("demsr:superresolve", {"INPUT": str(src), "SCALE": 2,
                                               "OUTPUT": "TEMPORARY_OUTPUT"},
                        context=context, feedback=feedback)
    der = processing.run("demsr:derivatives", {"INPUT": sr["OUTPUT"], "SLOPE": "TEMPORARY_OUTPUT"},
                         context=context, feedback=feedback)
    with rasterio.open(der["SLOPE"]) as s, rasterio.open(src) as ds:
        slope = s.read(1, masked=True)
        assert s.shape == (2 * ds.height, 2 * ds.width) and s.res == (10.0, 10.0)
    assert 0 <= slope.min() and slope.max() < 90 and slope.count() == slope.size
