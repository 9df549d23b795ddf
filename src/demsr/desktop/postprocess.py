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

from ..layer_styles import DERIVATIVES, ORDER, file_stats, rgba, style_for

def band_stats(layer: QgsRasterLayer) -> dict:
    return file_stats(layer.source())


def qcolor(colour: str) -> QColor:
    return QColor(*rgba(colour))


def apply_style(layer: QgsRasterLayer, kind: str, reference: dict | None = None) -> None:
    renderer_kind, stops = style_for(kind, band_stats(layer), reference)
    provider = layer.dataProvider()
    if renderer_kind == "paletted":
        classes = [QgsPalettedRasterRenderer.Class(v, qcolor(c), label)
                   for v, c, label in stops]
        layer.setRenderer(QgsPalettedRasterRenderer(provider, 1, classes))
    else:
        ramp = QgsColorRampShader(stops[0][0], stops[-1][0])
        ramp.setColorRampType(QgsColorRampShader.Type.Interpolated)
        ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(v, qcolor(c), label)
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


class RunLayers:
    """The layers one Processing run loads (one context: a model's steps included), kept in
    styles.ORDER in the layer tree; only the first derivative stays visible."""

    context = None
    entries: list = []  # (rank, layer id, kind)

    @classmethod
    def add(cls, context, layer: QgsRasterLayer, kind: str, under=None) -> None:
        if context is not cls.context:  # a new run
            cls.context, cls.entries = context, []
        if under is not None:  # a hillshade: right below its DEM
            rank = next(r for r, lid, _ in cls.entries if lid == under.id()) + (1,)
        else:
            rank = (ORDER.index(kind) if kind in ORDER else len(ORDER), len(cls.entries), 0)
        cls.entries.append((rank, layer.id(), kind))

    @classmethod
    def arrange(cls, project: QgsProject, layer: QgsRasterLayer) -> None:
        root = project.layerTreeRoot()
        node = root.findLayer(layer.id())
        if node is None:
            return
        parent = node.parent()
        ordered = [(root.findLayer(lid), kind) for _, lid, kind in sorted(cls.entries)]
        ordered = [(n, kind) for n, kind in ordered if n is not None and n.parent() is parent]
        first = min(parent.children().index(n) for n, _ in ordered)
        clones = []
        derivative_seen = False
        for n, kind in ordered:
            clone = n.clone()
            if kind in DERIVATIVES:
                clone.setItemVisibilityChecked(not derivative_seen)
                derivative_seen = True
            clones.append(clone)
        # Clones in first: a layer with no node left in the tree leaves the project.
        parent.insertChildNodes(first, clones)
        for n, _ in ordered:
            parent.removeChildNode(n)


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
            project = context.project() or QgsProject.instance()
            RunLayers.add(context, layer, self.kind)
            if self.kind == "dem":
                RunLayers.add(context, add_hillshade(layer, project), "dem", under=layer)
            RunLayers.arrange(project, layer)
        except Exception as exc:  # a style problem must never lose the result
            if feedback is not None:
                feedback.reportError(f"Could not style '{self.name}': {exc}")
        finally:
            if self in OutputStyler._alive:
                OutputStyler._alive.remove(self)
