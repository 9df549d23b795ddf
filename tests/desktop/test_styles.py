"""Output styles: the pure choice of ramps, and the post-processor the dialog runs
on a real layer after a real algorithm run."""
import pytest
from qgis.core import (QgsPalettedRasterRenderer, QgsProcessingContext, QgsProcessingFeedback,
                       QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer)

from demsr import layer_styles as styles


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
    assert kind == "paletted" and styles.rgba(streams[0][1])[3] == 0
    assert styles.rgba(streams[1][1]) == (0x1f, 0x78, 0xb4, 255)     # opaque blue
    kind, mask = styles.style_for("filled_mask", {"min": 0, "max": 2})
    colours = {v: styles.rgba(c) for v, c, _ in mask}
    assert kind == "paletted" and set(colours) == {0, 1, 2} and colours[0][3] == 0
    assert 0 < colours[1][3] < 255 and 0 < colours[2][3] < 255      # semi-transparent
    assert colours[1][:3] != colours[2][:3]                          # fill vs auxiliary DEM


def test_quantile_stretches_ignore_one_outlier():
    """One lake shore (a huge curvature) must not set the stretch: the 2–98 % quantiles do."""
    stats = {"min": -5.0, "max": 0.03, "mean": 0.0, "std": 0.3, "low": -0.02, "high": 0.03}
    _, stops = styles.style_for("plan_curvature", stats)
    assert (stops[0][0], stops[-1][0]) == (-0.03, 0.03)
    _, stops = styles.style_for("error", stats)
    assert stops[0][0] == -stops[-1][0] == -0.03 and stops[2][0] == 0
    _, stops = styles.style_for("slope", {"min": 0, "max": 89, "low": 1, "high": 35})
    assert stops[-1][0] == 35


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
    assert colours[0].alpha() == 0 and colours[1].alpha() == 255
    assert colours[1].blue() > colours[1].red()
    # one run's layers together: streams on top, then the derivatives in a fixed order, only
    # the first visible; the input DEM stays below them
    tree = QgsProject.instance().layerTreeRoot()
    order = [n.name() for n in tree.findLayers()]
    assert order == ["sagehen streams", "sagehen slope", "sagehen aspect",
                     "sagehen plan curvature", "sagehen flow accumulation", "sagehen"], order
    visible = [n.name() for n in tree.findLayers() if n.isVisible()]
    assert visible == ["sagehen streams", "sagehen slope", "sagehen"], visible
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


def test_evaluate_error_raster_is_diverging_and_named_after_the_input(provider, with_iface,
                                                                       crop, tmp_path):
    import numpy as np
    import rasterio

    src = crop("flopy_sagehen_10m.tif", 100, 100, 48, 48)
    shifted = tmp_path / "sagehen_plus.tif"
    with rasterio.open(src) as ds:
        profile, z = ds.profile, ds.read(1)
    with rasterio.open(shifted, "w", **profile) as ds:
        ds.write(np.where(z == profile.get("nodata"), z, z + 0.5)[None].astype(z.dtype))
    result = QgsRasterLayer(str(shifted), "sagehen_plus")
    reference = QgsRasterLayer(str(src), "sagehen")
    params = {"INPUT": result, "REFERENCE": reference, "OUTPUT_HTML": None,
              "OUTPUT_TABLE": None, "OUTPUT_ERROR": str(tmp_path / "error.tif")}
    layer = _run_as_dialog("demsr:evaluate", params, ["OUTPUT_ERROR"])["OUTPUT_ERROR"]
    assert layer.name() == "sagehen_plus error (− sagehen)"
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    assert renderer.classificationMin() == pytest.approx(-renderer.classificationMax())
    assert renderer.classificationMax() == pytest.approx(0.5, rel=0.01)
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    mid = items[len(items) // 2]
    assert mid.value == pytest.approx(0) and mid.color.red() == mid.color.blue()  # white at 0
    QgsProject.instance().removeAllMapLayers()


def test_names_tell_bundled_and_custom_models_and_target_units_apart(provider, with_iface,
                                                                      crop, tmp_path):
    import shutil

    from demsr.core.nets import bundled

    src = crop("flopy_sagehen_10m.tif", 100, 100, 24, 24)
    dem = QgsRasterLayer(str(src), "sagehen")
    mine = tmp_path / "mine.pt"
    shutil.copyfile(bundled.sr_model_path(2), mine)
    runs = {"bundled": {"METHOD": "model"}, "custom": {"METHOD": "model", "MODEL": str(mine)},
            "target": {"METHOD": "lanczos", "TARGET_RESOLUTION": 5.0}}
    names = {}
    for key, extra in runs.items():
        params = {"INPUT": dem, "SCALE": 2.0, "DEVICE": "cpu",
                  "OUTPUT": str(tmp_path / f"{key}.tif"), **extra}
        names[key] = _run_as_dialog("demsr:superresolve", params, ["OUTPUT"])["OUTPUT"].name()
    assert names == {"bundled": "sagehen ×2 model", "custom": "sagehen ×2 model mine",
                     "target": "sagehen 5 m lanczos"}
    QgsProject.instance().removeAllMapLayers()


def test_uncertainty_is_a_sequential_ramp_in_metres_named_after_the_input(provider, with_iface,
                                                                            crop, tmp_path):
    kind, stops = styles.style_for("uncertainty", {"min": 0.0, "max": 90.0, "high": 12.0})
    assert kind == "pseudocolor" and stops[0][0] == 0 and stops[-1][0] == 12.0  # not the cliff
    assert all(label.endswith(" m") for _, _, label in stops)
    light = [sum(styles.rgba(c)[:3]) for _, c, _ in stops]
    assert light == sorted(light, reverse=True)  # sequential: darker = less certain
    src = crop("flopy_sagehen_10m.tif", 100, 100, 48, 48)
    params = {"INPUT": QgsRasterLayer(str(src), "sagehen"), "SCALE": 2, "METHOD": "model",
              "DEVICE": "cpu", "OUTPUT": str(tmp_path / "sr.tif"),
              "UNCERTAINTY": str(tmp_path / "sigma.tif")}
    layers = _run_as_dialog("demsr:superresolve", params, ["OUTPUT", "UNCERTAINTY"])
    layer = layers["UNCERTAINTY"]
    assert layer.name() == "sagehen ×2 uncertainty (1σ, m)"
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert items[0].value == 0 and items[-1].value > 0 and items[-1].label.endswith(" m")
    assert items[0].color.lightness() > items[-1].color.lightness()
    QgsProject.instance().removeAllMapLayers()
