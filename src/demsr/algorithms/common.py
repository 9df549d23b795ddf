"""What every algorithm of the provider shares: base class, feedback bridge, layer paths."""
from __future__ import annotations

import math
import numbers
import os
import re
from contextlib import contextmanager
from typing import Optional

from qgis.core import (QgsApplication, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingFeedback, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterNumber, QgsRasterLayer,
                       QgsUnitTypes)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, DemSrError, as_user_error
from ..core.monitor import Monitor

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.png")
README_URL = "https://github.com/demsr/qgis-dem-superresolution/blob/main/README.md"


# Output file → the name its layer gets. A model hands the next step a file
# (…/OUTPUT.tif): its results are named after the first step's input through this.
_NAMES: dict = {}


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def input_name(layer: QgsRasterLayer) -> str:
    """The name to build result names on: the layer's, or for the output of an earlier step
    of this session (a model's intermediate file) the name that step gave it."""
    return _NAMES.get(_key(layer.source()), layer.name())


def style_output(context, dest: str, kind: str, name: str, reference_path: str = "") -> None:
    """Name and style the output layer the dialog will load (desktop/postprocess.py runs on
    the main thread after the run). The name is remembered for input_name. In qgis_process
    the style goes beside the output as DEST.qml (layer_styles.write_sidecar), which QGIS
    loads with the file; in processing.run without a window nothing else happens."""
    from qgis.utils import iface

    if dest:
        if len(_NAMES) > 10_000:  # a long session: forget the oldest
            del _NAMES[next(iter(_NAMES))]
        _NAMES[_key(dest)] = name
    if dest and iface is None and QgsApplication.platform() == "qgis_process":
        from ..layer_styles import write_sidecar

        try:
            write_sidecar(dest, kind, reference_path)
        except (OSError, RuntimeError, AttributeError):  # a style must never fail the run
            pass
        return
    if iface is None or not dest or not context.willLoadLayerOnCompletion(dest):
        return
    from ..desktop.postprocess import OutputStyler

    context.layerToLoadOnCompletionDetails(dest).setPostProcessor(
        OutputStyler(kind, name, reference_path))


def unit_of(layer: QgsRasterLayer) -> str:
    """The unit of the layer's pixel size, for names: 'm', '°', 'ft'."""
    units = layer.crs().mapUnits()
    if units == QgsUnitTypes.DistanceUnit.DistanceDegrees:
        return "°"
    return QgsUnitTypes.toAbbreviatedString(units) or "map units"


def plain_number(value):
    """A number output as Python's float/int: NumPy ≥ 2.3 returns NumPy scalars where it
    returned Python numbers, and QGIS 3.44 passes those to qgis_process --json as ""."""
    if value is None:
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


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
    except (MemoryError, OSError, RuntimeError) as exc:  # out of memory, disk or OS errors
        friendly = as_user_error(exc)
        if friendly is None:
            raise
        raise QgsProcessingException(str(friendly)) from None


def raster_source(layer: QgsRasterLayer, parameter: str) -> str:
    """The file GDAL can open behind a raster layer parameter."""
    if layer is None:
        raise QgsProcessingException(
            tr(f"{parameter}: no raster layer given, or it cannot be loaded."))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(tr(
            f"{parameter}: layer '{layer.name()}' comes from the '{layer.providerType()}' "
            "provider; only file-based (GDAL) rasters are supported. Save it as a GeoTIFF first "
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
    HELP_ANCHOR = ""  # the README section of the algorithm

    def helpUrl(self):  # noqa: N802
        """In the QGIS window the README shipped in the plugin (works offline), else
        online."""
        if not self.HELP_ANCHOR:
            return ""
        online = f"{README_URL}#{self.HELP_ANCHOR}"
        from qgis.utils import iface

        if iface is not None:
            from ..desktop.help import local_help_url

            try:
                return local_help_url(self.HELP_ANCHOR, online) or online
            except OSError:  # no writable temp folder: the online guide
                pass
        return online

    def with_labels(self, text: str) -> str:
        """Help text written with parameter ids, shown with the labels the form shows:
        <b>SCALE</b> → <b>Scale factor</b> (SCALE); a bare SCALE → “Scale factor”."""
        labels = {d.name(): d.description() for d in self.parameterDefinitions()}
        labels.update({d.name(): d.description() for d in self.outputDefinitions()
                       if d.name() not in labels})
        if not labels:
            return text
        names = sorted(labels, key=len, reverse=True)
        bold = re.compile(r"<b>(" + "|".join(map(re.escape, names)) + r")</b>")
        text = bold.sub(lambda m: f"<b>{labels[m.group(1)]}</b> ({m.group(1)})", text)
        bare = re.compile(r"(?<![\w(>=])(" + "|".join(map(re.escape, names)) + r")(?![\w)<])")
        return bare.sub(lambda m: f"“{labels[m.group(1)]}”", text)

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
            parameter.setFlags(parameter.flags()
                               | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
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
                                              QgsProcessingParameterNumber.Type.Integer,
                                              defaultValue=default, minValue=lo, maxValue=hi),
                 advanced)

    @staticmethod
    def given(parameters, name: str) -> bool:
        """An optional parameter the user set (the dialog sends None or "" when it is not)."""
        return parameters.get(name) not in (None, "")

    def optional_layer(self, parameters, name: str, context) -> Optional[str]:
        """The file behind an optional raster layer parameter, or None when it is not set."""
        if not self.given(parameters, name):
            return None
        return raster_source(self.parameterAsRasterLayer(parameters, name, context), name)

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Before any run (dialog, processing.run, qgis_process): no number parameter is NaN
        or infinite. QGIS accepts 'nan' and '1e309' for a Double, and every range check
        lets NaN through, so the run would silently ignore it or fail later with an
        unrelated message."""
        for definition in self.parameterDefinitions():
            name = definition.name()
            if isinstance(definition, QgsProcessingParameterNumber) and self.given(parameters,
                                                                                  name):
                bad = not_finite(parameters[name])
                if bad is not None:
                    return False, self.tr(f"{name}: '{bad}' is not a finite number. Give a "
                                          "plain number (e.g. 2 or 0.5).")
        return super().checkParameterValues(parameters, context)

    def optional_number(self, parameters, name: str, context) -> Optional[float]:
        """An optional number, None when not set; a value that does not parse is an error
        (QGIS would silently read it as 0 and the run would use another grid)."""
        if not self.given(parameters, name):
            return None
        value = parameters[name]
        if not_finite(value) is not None:
            raise QgsProcessingException(self.tr(
                f"{name}: '{not_finite(value)}' is not a finite number. Give a plain number "
                "(e.g. 2 or 0.5)."))
        if not isinstance(value, str):  # a number, or a modeler expression QGIS evaluates
            return self.parameterAsDouble(parameters, name, context)
        try:
            return float(value.strip())
        except ValueError:
            hint = " Use a decimal point, not a comma." if "," in value else ""
            raise QgsProcessingException(self.tr(
                f"{name}: '{value}' is not a number.{hint}")) from None


def not_finite(value) -> Optional[str]:
    """The text of a parameter value that reads as NaN or ±infinity ('nan', '1e309'),
    else None (numbers, other text and expressions are checked where they are used)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if math.isfinite(value) else str(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return None if math.isfinite(number) else value.strip()
    return None
