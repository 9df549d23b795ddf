"""What every algorithm of the provider shares: base class, feedback bridge, layer paths."""
from __future__ import annotations

import os
from contextlib import contextmanager

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingFeedback, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterNumber, QgsRasterLayer)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, DemSrError
from ..core.monitor import Monitor

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.png")


def tr(text: str) -> str:
    return QCoreApplication.translate("demsr", text)


def monitor_for(feedback: QgsProcessingFeedback) -> Monitor:
    """Connects core callbacks to the feedback object (progress 0..1 → 0..100 %)."""
    if feedback is None:
        feedback = QgsProcessingFeedback()
    return Monitor(
        progress=lambda f: feedback.setProgress(100.0 * f),
        cancelled=feedback.isCanceled,
        info=feedback.pushInfo,
        warning=feedback.reportError if not hasattr(feedback, "pushWarning")
        else feedback.pushWarning,
    )


@contextmanager
def user_errors():
    """Turn core errors into QgsProcessingException with the same message."""
    try:
        yield
    except DemSrError as exc:
        raise QgsProcessingException(str(exc)) from None
    except Cancelled:
        raise QgsProcessingException(tr("Cancelled by the user; no output was written.")) from None


def raster_source(layer: QgsRasterLayer, parameter: str) -> str:
    """The file GDAL can open behind a raster layer parameter."""
    if layer is None:
        raise QgsProcessingException(tr(f"{parameter}: no raster layer given, or it cannot be loaded."))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(tr(
            f"{parameter}: layer '{layer.name()}' comes from the '{layer.providerType()}' provider; "
            "only file-based (GDAL) rasters are supported. Save it as a GeoTIFF first "
            "(right click ▸ Export ▸ Save As…)."))
    return layer.source()


class DemSrAlgorithm(QgsProcessingAlgorithm):
    """Base class: createInstance, icon, names, group and translation for all algorithms.

    Subclasses set NAME (the id after "demsr:", which scripts depend on),
    DISPLAY_NAME and GROUP ("Super-resolution" or "Terrain").
    """

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "Super-resolution"

    def createInstance(self):  # noqa: N802
        return type(self)()

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self):
        return self.tr(self.GROUP)

    def groupId(self):  # noqa: N802
        return self.GROUP.lower().replace("-", "")

    def icon(self):
        return QIcon(ICON)

    def tr(self, text: str) -> str:
        return tr(text)

    def add(self, parameter, advanced: bool = False) -> None:
        """addParameter, optionally under the dialog's Advanced section."""
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(parameter)

    def add_enum(self, name: str, label: str, options: list, default: str,
                 advanced: bool = False) -> None:
        """An enum whose values are its strings, so scripts can pass METHOD=lanczos."""
        p = QgsProcessingParameterEnum(name, self.tr(label), options=list(options),
                                       defaultValue=default)
        p.setUsesStaticStrings(True)
        self.add(p, advanced)

    def add_int(self, name: str, label: str, default: int, lo: int, hi: int,
                advanced: bool = False) -> None:
        self.add(QgsProcessingParameterNumber(name, self.tr(label),
                                              QgsProcessingParameterNumber.Integer,
                                              defaultValue=default, minValue=lo, maxValue=hi),
                 advanced)
