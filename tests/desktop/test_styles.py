"""Output names and styles: the pure choice of ramps, and the post-processor the dialog runs
on a real layer after a real algorithm run."""
import pytest
from qgis.core import (QgsPalettedRasterRenderer, QgsProcessingContext, QgsProcessingFeedback,
                       QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer)

from demsr.desktop import styles


def test_names_say_what_the_layer_is():
    assert styles.layer_name("lidar_2m", "dem", "×2 model") == "lidar_2m ×2 model"
    assert styles.layer_name("lidar_2m", "slope") == "lidar_2m slope"
    assert styles.layer_name("srtm", "filled_mask") == "srtm filled pixels"


def test_ramps_fit_each_kind():
    stats = {"min": -0.02, "max": 0.05, "mean": 0.0, "std": 0.01}
    kind, stops = styles.style_for("plan_curvature", stats)
    assert stops[0][0] == pytest.approx(-stops[-1][0]) and stops[2][0] == pytest.approx(0)
    _, stops = styles.style_for("dem", {"min": 500, "max": 900}, {"min": 480, "max": 950})
    assert (stops[0][0], stops[-1][0]) == (480, 950)          # the input's stretch
    _, aspect = styles.style_for("aspect", {"min": 0, "max": 360})
    assert aspect[0][1] == aspect[-1][1] and aspect[-1][0] == 360  # circular
    _, flow = styles.style_for("flow_accumulation", {"min": 1, "max": 123456})
    values = [v for v, _, _ in flow]
    assert values[0] == 1 and values[-1] >= 123456
    assert values[1] / values[0] == pytest.approx(values[2] / values[1])  # log spaced
    kind, streams = styles.style_for("streams", {"min": 0, "max": 1})
    assert kind == "paletted" and streams[0][1].endswith("00") and streams[1][1] == "#1f78b4ff"
    kind, mask = styles.style_for("filled_mask", {"min": 0, "max": 1})
    alpha = int(mask[1][1][7:9], 16)
    assert kind == "paletted" and 0 < alpha < 255                      # semi-transparent


@pytest.fixture
def with_iface(qgis_iface, monkeypatch):
    import qgis.utils
    monkeypatch.setattr(qgis.utils, "iface", qgis_iface)


def _run_as_dialog(alg_id, params, outputs):
    """processing.run with the outputs marked 'load on completion', as the dialog does;
    then the post-processors on this (main) thread, as Processing's handleAlgorithmResults."""
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    for key in outputs:
        context.addLayerToLoadOnCompletion(params[key], QgsProcessingContext.LayerDetails(
            key, QgsProject.instance(), key))
    feedback = QgsProcessingFeedback()
    processing.run(alg_id, params, context=context, feedback=feedback)
    layers = {}
    for key in outputs:
        details = context.layerToLoadOnCompletionDetails(params[key])
        layer = QgsRasterLayer(params[key], key)
        QgsProject.instance().addMapLayer(layer)
        assert details.postProcessor() is not None, key
        details.postProcessor().postProcessLayer(layer, context, feedback)
        layers[key] = layer
    return layers


def test_derivatives_outputs_are_named_and_styled(provider, with_iface, crop, tmp_path):
    src = crop("flopy_sagehen_10m.tif", 100, 100, 120, 120)
    dem = QgsRasterLayer(str(src), "sagehen")
    QgsProject.instance().addMapLayer(dem)
    keys = ["SLOPE", "ASPECT", "PLAN_CURVATURE", "FLOW_ACCUMULATION", "STREAMS"]
    params = {"INPUT": dem, "STREAM_THRESHOLD": 50}
    params.update({k: str(tmp_path / f"{k.lower()}.tif") for k in keys})
    params.update({k: None for k in ("PROFILE_CURVATURE", "TANGENTIAL_CURVATURE")})
    layers = _run_as_dialog("demsr:derivatives", params, keys)
    assert layers["SLOPE"].name() == "sagehen slope"
    assert layers["FLOW_ACCUMULATION"].name() == "sagehen flow accumulation"
    assert isinstance(layers["SLOPE"].renderer(), QgsSingleBandPseudoColorRenderer)
    items = layers["FLOW_ACCUMULATION"].renderer().shader().rasterShaderFunction() \
        .colorRampItemList()
    assert items[1].value / items[0].value == pytest.approx(items[2].value / items[1].value)
    curv = layers["PLAN_CURVATURE"].renderer()
    assert curv.classificationMin() == pytest.approx(-curv.classificationMax())
    streams = layers["STREAMS"].renderer()
    assert isinstance(streams, QgsPalettedRasterRenderer)
    colours = {c.value: c.color for c in streams.classes()}
    assert colours[0].alpha() == 0 and colours[1].blue() > colours[1].red()
    QgsProject.instance().removeAllMapLayers()


def test_no_post_processor_without_a_window(provider, crop, tmp_path, monkeypatch):
    """qgis_process / scripts: iface is None, nothing desktop is attached."""
    import qgis.utils
    import processing

    monkeypatch.setattr(qgis.utils, "iface", None)
    src = crop("flopy_sagehen_10m.tif", 100, 100, 60, 60)
    out = str(tmp_path / "slope.tif")
    context = QgsProcessingContext()
    context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails(
        "SLOPE", QgsProject.instance(), "SLOPE"))
    processing.run("demsr:derivatives", {"INPUT": str(src), "SLOPE": out,
                                         "PLAN_CURVATURE": None, "PROFILE_CURVATURE": None,
                                         "TANGENTIAL_CURVATURE": None,
                                         "FLOW_ACCUMULATION": None, "STREAMS": None},
                   context=context)
    assert context.layerToLoadOnCompletionDetails(out).postProcessor() is None
