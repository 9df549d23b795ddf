"""Names and styles an algorithm's output layer after the dialog loads it (main thread).

Set from processAlgorithm through algorithms.common.style_output only when a QGIS window
exists and the layer will be loaded; the styling itself runs in postProcessLayer."""
from __future__ import annotations

import math

from qgis.core import (QgsBilinearRasterResampler, QgsColorRampShader, QgsHillshadeRenderer,
                       QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface,
                       QgsProject, QgsRasterLayer, QgsRasterShader,
                       QgsSingleBandPseudoColorRenderer)
from qgis.PyQt.QtGui import QColor, QPainter

from .styles import style_for

SAMPLE = 250_000  # pixels read for statistics: cheap on any raster size


def band_stats(layer: QgsRasterLayer) -> dict:
    provider = layer.dataProvider()
    # All statistics is the default; passing it as a number is deprecated in QGIS 3.40.
    s = provider.bandStatistics(1, extent=layer.extent(), sampleSize=SAMPLE)
    return {"min": s.minimumValue, "max": s.maximumValue, "mean": s.mean, "std": s.stdDev}


def apply_style(layer: QgsRasterLayer, kind: str, reference: dict | None = None) -> None:
    renderer_kind, stops = style_for(kind, band_stats(layer), reference)
    provider = layer.dataProvider()
    if renderer_kind == "paletted":
        classes = [QgsPalettedRasterRenderer.Class(v, QColor(c), label) for v, c, label in stops]
        layer.setRenderer(QgsPalettedRasterRenderer(provider, 1, classes))
    else:
        ramp = QgsColorRampShader(stops[0][0], stops[-1][0])
        ramp.setColorRampType(QgsColorRampShader.Type.Interpolated)
        ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(v, QColor(c), label)
                                   for v, c, label in stops])
        ramp.setClip(False)
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(ramp)
        renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
        renderer.setClassificationMin(stops[0][0])
        renderer.setClassificationMax(stops[-1][0])
        layer.setRenderer(renderer)
    layer.triggerRepaint()


def add_hillshade(layer: QgsRasterLayer, project: QgsProject) -> QgsRasterLayer:
    """A hillshade of the same file just below the coloured DEM, which multiplies over it."""
    shade = QgsRasterLayer(layer.source(), f"{layer.name()} hillshade", "gdal")
    renderer = QgsHillshadeRenderer(shade.dataProvider(), 1, 315.0, 45.0)
    if layer.crs().isGeographic():  # degrees across, metres up
        lat = layer.extent().center().y()
        renderer.setZFactor(1.0 / (111_320.0 * max(0.1, math.cos(math.radians(lat)))))
    shade.setRenderer(renderer)
    smooth(shade)
    smooth(layer)
    project.addMapLayer(shade, False)
    node = project.layerTreeRoot().findLayer(layer.id())
    parent = node.parent() if node is not None else project.layerTreeRoot()
    index = parent.children().index(node) + 1 if node is not None else 0
    parent.insertLayer(index, shade)
    layer.setBlendMode(QPainter.CompositionMode.CompositionMode_Multiply)
    return shade


def smooth(layer: QgsRasterLayer) -> None:
    """Bilinear resampling on screen: a hillshade drawn from nearest-neighbour blocks shows
    stair-step stripes when zoomed in."""
    layer.resampleFilter().setZoomedInResampler(QgsBilinearRasterResampler())
    layer.resampleFilter().setZoomedOutResampler(QgsBilinearRasterResampler())


class OutputStyler(QgsProcessingLayerPostProcessorInterface):
    _alive: list = []  # QGIS does not own post-processors: keep them until they have run

    def __init__(self, kind: str, name: str, reference_path: str = ""):
        super().__init__()
        self.kind, self.name, self.reference_path = kind, name, reference_path
        OutputStyler._alive.append(self)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        try:
            if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
                return
            layer.setName(self.name)
            reference = None
            if self.kind == "dem" and self.reference_path:
                ref = QgsRasterLayer(self.reference_path, "reference", "gdal")
                reference = band_stats(ref) if ref.isValid() else None
            apply_style(layer, self.kind, reference)
            if self.kind == "dem":
                add_hillshade(layer, context.project() or QgsProject.instance())
        except Exception as exc:  # a style problem must never lose the result
            if feedback is not None:
                feedback.reportError(f"Could not style '{self.name}': {exc}")
        finally:
            if self in OutputStyler._alive:
                OutputStyler._alive.remove(self)
