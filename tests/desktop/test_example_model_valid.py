"""The example model is valid in QGIS's own eyes (what the Graphical Modeler and Run check),
its outputs are labelled, and the desktop copies it where the toolbox lists models."""
from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm

from _checkout import PACKAGE
from demsr.desktop.examples import install_example_models

MODEL = PACKAGE / "resources" / "models" / "example_repair_sr_derivatives.model3"


def test_example_model_validates_and_labels_every_output(provider):
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    ok, issues = model.validate()
    assert ok and not issues, issues
    outputs = model.destinationParameterDefinitions()
    assert len(outputs) == 4 and all(o.description().strip() for o in outputs)
    for child in model.childAlgorithms().values():   # every parameter saved
        names = {p.name() for p in child.algorithm().parameterDefinitions()
                 if not p.isDestination()}
        assert names <= set(child.parameterSources()), (child.childId(),
                                                        names - set(child.parameterSources()))


def test_example_model_goes_into_the_models_folder_once(tmp_path):
    written = install_example_models(str(tmp_path))
    copy = tmp_path / MODEL.name
    assert [Path(p) for p in written] == [copy] and copy.read_bytes() == MODEL.read_bytes()
    assert install_example_models(str(tmp_path)) == []        # identical: nothing to do
    copy.write_text(copy.read_text() + "\n")                   # saved from the modeler since
    assert install_example_models(str(tmp_path)) == [] and copy.read_text().endswith("\n\n")
