"""The Processing provider `demsr`."""
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .common import ICON, README_URL


def algorithm_classes() -> list:
    """Algorithms that are real and complete; nothing else is registered."""
    from .derivatives import DerivativesAlgorithm
    from .evaluate import EvaluateAlgorithm
    from .superresolve import SuperResolveAlgorithm
    from .train import TrainAlgorithm
    from .voidrepair import VoidRepairAlgorithm

    return [SuperResolveAlgorithm, DerivativesAlgorithm, TrainAlgorithm, VoidRepairAlgorithm,
            EvaluateAlgorithm]


class DemSrProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "demsr"

    def name(self) -> str:
        return "DEM super-resolution"

    def longName(self) -> str:  # noqa: N802
        return "DEM super-resolution and void repair"

    def icon(self):
        return QIcon(ICON)

    def helpUrl(self) -> str:  # noqa: N802 - not a 3.22 virtual; the menu/status use it
        return f"{README_URL}#install-in-qgis-desktop"

    def loadAlgorithms(self):  # noqa: N802
        for cls in algorithm_classes():
            self.addAlgorithm(cls())

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif", "tiff"]

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"
