"""The plugin's example models in the Processing Toolbox (Models), through the profile's
models folder, where QGIS's own model provider lists what it finds."""
from __future__ import annotations

import filecmp
import glob
import os
import shutil

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "resources", "models")


def install_example_models(folder: str = "") -> list:
    """Copies each shipped .model3 into `folder` (default: the first models folder of the
    Processing settings) and refreshes the model provider; returns the files written. A copy
    changed after the plugin was installed (saved from the modeler) is kept."""
    if not folder:
        from processing.modeler.ModelerUtils import ModelerUtils

        folder = ModelerUtils.modelsFolders()[0]
    os.makedirs(folder, exist_ok=True)
    written = []
    for src in sorted(glob.glob(os.path.join(MODELS, "*.model3"))):
        dst = os.path.join(folder, os.path.basename(src))
        if os.path.exists(dst) and (filecmp.cmp(src, dst, shallow=False)
                                    or os.path.getmtime(dst) > os.path.getmtime(src)):
            continue
        shutil.copyfile(src, dst)
        written.append(dst)
    if written:
        from qgis.core import QgsApplication

        provider = QgsApplication.processingRegistry().providerById("model")
        if provider is not None:
            provider.refreshAlgorithms()
    return written
