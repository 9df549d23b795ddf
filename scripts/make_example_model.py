"""Writes resources/models/example_repair_sr_derivatives.model3 from the algorithms' own
parameter definitions, so the example saves every child parameter (QGIS's modeler and
validate() flag a missing one) and follows the algorithms when they change.

Usage (QGIS's Python, with the checkout installed by `make venv`):
.venv/bin/python scripts/make_example_model.py
"""
from __future__ import annotations

import os
import sys

from pathlib import Path

from demsr.core.nets.bundled import MODELS_DIR

MODEL = Path(MODELS_DIR) / "example_repair_sr_derivatives.model3"
NAME = "DEM repair, super-resolve, derivatives"
GROUP = "DEM Super-Resolution examples"
# (child id, algorithm, description, {parameter: static value} beyond the defaults,
#  {parameter: child id whose OUTPUT feeds it}, {child output: (model output, label)})
STEPS = [
    ("repair", "demsr:voidrepair", "Void repair",
     {"METHOD": "auto", "DEVICE": "cpu"}, {},
     {"FILLED_MASK": ("filled_pixels", "Filled pixels (void repair)")}),
    ("superresolve", "demsr:superresolve", "Super-resolve ×2",
     {"METHOD": "model", "SCALE": 2.0, "DEVICE": "cpu"}, {"INPUT": "repair"},
     {"OUTPUT": ("superresolved", "Repaired DEM super-resolved ×2")}),
    ("derivatives", "demsr:derivatives", "Terrain derivatives",
     {"STREAM_THRESHOLD": 200}, {"INPUT": "superresolve"},
     {"SLOPE": ("slope", "Slope of the super-resolved DEM"),
      "STREAMS": ("streams", "Streams of the super-resolved DEM")}),
]
HELP = ("Repairs the voids of a DEM (Void repair/SR), super-resolves the result ×2 with the "
        "bundled model (Super-resolve DEM) and computes its slope and streams (Terrain "
        "derivatives). Open it in the Graphical Modeler to change a step, or save a copy "
        "under another name to keep your changes.")


def build():
    from qgis.core import (QgsApplication, QgsProcessingDestinationParameter,
                           QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterRasterLayer)
    from qgis.PyQt.QtCore import QPointF

    registry = QgsApplication.processingRegistry()
    model = QgsProcessingModelAlgorithm(NAME, GROUP)
    model.setHelpContent({"ALG_DESC": HELP})
    dem = QgsProcessingModelParameter("dem")
    dem.setPosition(QPointF(120, 60))
    dem.setDescription("DEM with voids")
    model.addModelParameter(QgsProcessingParameterRasterLayer("dem", "DEM with voids"), dem)
    for row, (child_id, alg_id, description, values, links, outputs) in enumerate(STEPS):
        alg = registry.algorithmById(alg_id)
        if alg is None:
            raise SystemExit(f"{alg_id} is not registered")
        child = QgsProcessingModelChildAlgorithm(alg_id)
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(300, 160 + 140 * row))
        for p in alg.parameterDefinitions():
            if isinstance(p, QgsProcessingDestinationParameter):
                continue
            if p.name() in links:
                source = Source.fromChildOutput(links[p.name()], "OUTPUT")
            elif p.name() == "INPUT":
                source = Source.fromModelParameter("dem")
            else:
                source = Source.fromStaticValue(values.get(p.name(), p.defaultValue()))
            child.addParameterSources(p.name(), [source])
        model_outputs = {}
        for i, (child_output, (name, label)) in enumerate(outputs.items()):
            out = QgsProcessingModelOutput(name, label)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setPosition(QPointF(560, 160 + 140 * row + 40 * i))
            model_outputs[name] = out
        child.setModelOutputs(model_outputs)
        model.addChildAlgorithm(child)
    model.updateDestinationParameters()
    ok, issues = model.validate()
    if not ok:
        raise SystemExit("the model is not valid: " + "; ".join(issues))
    return model


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from demsr.algorithms.provider import DemSrProvider

    provider = DemSrProvider()  # kept referenced while the model is built
    QgsApplication.processingRegistry().addProvider(provider)
    model = build()
    if not model.toFile(str(MODEL)):
        raise SystemExit(f"could not write {MODEL}")
    print(f"wrote {MODEL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
