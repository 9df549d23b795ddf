"""Runs inside a real QGIS desktop (qgis --code this_file) with a fresh profile, under Xvfb.

Installs the ZIP with the Plugin Manager's own installFromZipFile, opens the plugin's menu,
runs Super-resolve DEM from its dialog on a loaded layer, waits for the task, and records
what the window shows (JSON + screenshots) in $DEMSR_GUI_OUT. Then quits QGIS."""
import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsProject, QgsSingleBandPseudoColorRenderer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QProgressBar, QTextEdit
from qgis.utils import iface

OUT = os.environ["DEMSR_GUI_OUT"]
ZIP = os.environ["DEMSR_GUI_ZIP"]
DEM = os.environ["DEMSR_GUI_DEM"]
result = {"steps": []}


def save():
    with open(os.path.join(OUT, "result.json"), "w") as fh:
        json.dump(result, fh, indent=1, default=str)


def shot(name, widget=None):
    QApplication.processEvents()
    screen = QApplication.primaryScreen()
    pix = widget.grab() if widget is not None else screen.grabWindow(0)
    path = os.path.join(OUT, name)
    pix.save(path)
    result.setdefault("screenshots", []).append(path)


def wait_until(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        QApplication.processEvents()
        if cond():
            return True
        time.sleep(0.05)
    return False


def tree():
    """Layer names in the layer tree, top to bottom, and which are visible."""
    nodes = QgsProject.instance().layerTreeRoot().findLayers()
    return [n.name() for n in nodes], [n.name() for n in nodes if n.isVisible()]


def alphas(layer):
    """{value: alpha} of a paletted layer's classes, as QGIS draws them."""
    return {int(c.value): c.color.alpha() for c in layer.renderer().classes()}


def run_dialog(dialog, params, done, timeout=240):
    """Fill the algorithm's own dialog, press Run, wait for the layers and the task."""
    dialog.setParameters(params)
    dialog.runButton().click()
    ok = wait_until(done, timeout)
    wait_until(lambda: QgsApplication.taskManager().countActiveTasks() == 0, 30)
    wait_until(lambda: False, 0.5)
    return ok


def named(name):
    return any(lyr.name() == name for lyr in QgsProject.instance().mapLayers().values())


def main():
    import pyplugin_installer
    import qgis.utils

    iface.mainWindow().resize(1280, 800)
    pyplugin_installer.instance().installFromZipFile(ZIP)
    # QGIS 3.40 renamed home_plugin_path to HOME_PLUGIN_PATH
    home = getattr(qgis.utils, "HOME_PLUGIN_PATH", None) or qgis.utils.home_plugin_path
    result["installed_dir"] = os.path.isdir(os.path.join(home, "demsr"))
    result["active"] = qgis.utils.isPluginLoaded("demsr") and "demsr" in qgis.utils.active_plugins
    result["steps"].append("installed")
    save()
    plugin = qgis.utils.plugins["demsr"]

    layer = iface.addRasterLayer(DEM, "lidar_2m")
    result["input_extent"] = layer.extent().toString(3)
    iface.mapCanvas().setExtent(layer.extent())

    # The menu under Raster.
    raster_menu = iface.rasterMenu()
    sub = next(a.menu() for a in raster_menu.actions()
               if a.menu() is not None and a.text().replace("&", "") == "DEM Super-Resolution")
    result["menu"] = [a.text().replace("&&", "&") for a in sub.actions()]
    result["toolbar_button"] = plugin.ui.menu.toolbar_action in iface.pluginToolBar().actions()
    raster_menu.popup(iface.mainWindow().mapToGlobal(iface.mainWindow().rect().topLeft()))
    wait_until(lambda: False, 0.3)
    sub.popup(raster_menu.geometry().topRight())
    wait_until(lambda: False, 0.5)
    shot("menu.png")
    sub.hide()
    raster_menu.hide()
    result["steps"].append("menu")
    save()

    # Super-resolve DEM from the menu: its Processing dialog.
    action = next(a for a in sub.actions() if a.text().startswith("Super-resolve DEM"))
    action.trigger()
    dialog = plugin.ui.menu.dialog
    panel = dialog.mainWidget()
    target_widget = panel.wrappers["TARGET_RESOLUTION"].wrappedWidget()
    result["target_decimals"] = target_widget.decimals()
    out_path = os.path.join(OUT, "lidar_2m_x2.tif")
    dialog.setParameters({"INPUT": layer.id(), "SCALE": 2.0, "METHOD": "model",
                          "DEVICE": "cpu", "OUTPUT": out_path})
    dialog.runButton().click()
    result["steps"].append("run clicked")
    save()

    def loaded():
        return any(lyr.source() == out_path for lyr in QgsProject.instance().mapLayers().values()
                   if lyr.name() != "lidar_2m")
    result["run_finished"] = wait_until(loaded, 240)
    wait_until(lambda: QgsApplication.taskManager().countActiveTasks() == 0, 30)
    shot("dialog.png", dialog)
    dialog.close()
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.source() == out_path]
    result["output_layers"] = sorted(lyr.name() for lyr in layers)
    main_layer = next((lyr for lyr in layers if not lyr.name().endswith("hillshade")), None)
    if main_layer is not None:
        result["output_renderer"] = type(main_layer.renderer()).__name__
        result["output_pseudocolor"] = isinstance(main_layer.renderer(),
                                                  QgsSingleBandPseudoColorRenderer)
        shader = main_layer.renderer().shader().rasterShaderFunction()
        result["output_stretch"] = [shader.minimumValue(), shader.maximumValue()]
        result["output_extent"] = main_layer.extent().toString(3)
        result["output_width"] = main_layer.width()
        result["input_width"] = layer.width()
        iface.setActiveLayer(main_layer)
    # The same with a checkpoint of one's own: its name must tell the two results apart.
    import shutil

    from demsr.core.nets import bundled
    mine = os.path.join(OUT, "mine.pt")
    shutil.copyfile(bundled.sr_model_path(2), mine)
    action = next(a for a in sub.actions() if a.text().startswith("Super-resolve DEM"))
    action.trigger()
    custom_path = os.path.join(OUT, "lidar_2m_x2_mine.tif")
    run_dialog(plugin.ui.menu.dialog, {"INPUT": layer.id(), "SCALE": 2.0, "METHOD": "model",
                                       "MODEL": mine, "DEVICE": "cpu", "OUTPUT": custom_path},
               lambda: any(lyr.source() == custom_path
                           for lyr in QgsProject.instance().mapLayers().values()))
    plugin.ui.menu.dialog.close()
    result["custom_layers"] = sorted(lyr.name() for lyr in
                                     QgsProject.instance().mapLayers().values()
                                     if lyr.source() == custom_path)
    for lyr in QgsProject.instance().mapLayers().values():
        if lyr.source() == custom_path:
            QgsProject.instance().layerTreeRoot().findLayer(lyr.id()).setItemVisibilityChecked(
                False)
    iface.setActiveLayer(main_layer)
    QgsProject.instance().layerTreeRoot().findLayer(layer.id()).setItemVisibilityChecked(False)
    iface.mapCanvas().refreshAllLayers()
    wait_until(lambda: False, 2.0)
    iface.mapCanvas().waitWhileRendering()
    shot("result.png", iface.mainWindow())
    result["steps"].append("result")
    save()

    # Void repair/SR from the menu, on a copy of the DEM with holes: flow routing runs in a
    # second thread inside the algorithm's QGIS task.
    import numpy as np
    from osgeo import gdal

    holed_path = os.path.join(OUT, "lidar_2m_holed.tif")
    gdal.Translate(holed_path, DEM)
    ds = gdal.Open(holed_path, gdal.GA_Update)
    band = ds.GetRasterBand(1)
    z = band.ReadAsArray().astype(np.float32)
    holes = np.zeros(z.shape, bool)
    holes[40:52, 60:75] = True
    holes[100:106, 20:40] = True
    band.SetNoDataValue(-32768.0)
    z[holes] = -32768.0
    band.WriteArray(z)
    ds = band = None
    result["holes"] = int(holes.sum())
    holed = iface.addRasterLayer(holed_path, "lidar_2m_holed")
    iface.setActiveLayer(holed)
    action = next(a for a in sub.actions() if a.text().startswith("Void repair"))
    action.trigger()
    dialog = plugin.ui.menu.dialog
    repaired_path = os.path.join(OUT, "lidar_2m_repaired.tif")
    mask_path = os.path.join(OUT, "lidar_2m_filled.tif")
    sigma_path = os.path.join(OUT, "lidar_2m_sigma.tif")
    dialog.setParameters({"INPUT": holed.id(), "DEVICE": "cpu", "OUTPUT": repaired_path,
                          "FILLED_MASK": mask_path, "UNCERTAINTY": sigma_path})
    dialog.runButton().click()

    def repaired():
        return any(lyr.source() == repaired_path
                   for lyr in QgsProject.instance().mapLayers().values())
    result["voidrepair_finished"] = wait_until(repaired, 240)
    wait_until(lambda: QgsApplication.taskManager().countActiveTasks() == 0, 30)

    bar = dialog.findChild(QProgressBar)
    result["voidrepair_progress"] = bar.value() if bar is not None else None
    log = dialog.findChild(QTextEdit, "txtLog")
    result["voidrepair_log"] = log.toPlainText()[-1500:] if log is not None else ""
    shot("voidrepair.png", dialog)
    dialog.close()
    result["voidrepair_layers"] = sorted(
        lyr.name() for lyr in QgsProject.instance().mapLayers().values()
        if lyr.source() in (repaired_path, mask_path))
    sigma_layer = next((lyr for lyr in QgsProject.instance().mapLayers().values()
                        if lyr.source() == sigma_path), None)
    result["sigma_layer"] = None if sigma_layer is None else {
        "name": sigma_layer.name(), "renderer": sigma_layer.renderer().type()}
    result["voidrepair_tree"], _ = tree()
    mask_layer = next((lyr for lyr in QgsProject.instance().mapLayers().values()
                       if lyr.source() == mask_path), None)
    result["mask_alpha"] = alphas(mask_layer) if mask_layer is not None else None
    iface.mapCanvas().refreshAllLayers()
    wait_until(lambda: False, 1.0)
    iface.mapCanvas().waitWhileRendering()
    shot("voidrepair_window.png", iface.mainWindow())
    out = gdal.Open(repaired_path)
    if out is not None:
        rb = out.GetRasterBand(1)
        values = rb.ReadAsArray()
        result["voidrepair_nodata_in_holes"] = int((values[holes] == rb.GetNoDataValue()).sum())
        result["voidrepair_kept_outside"] = bool(np.array_equal(values[~holes], z[~holes]))
    out = None
    sig = gdal.Open(sigma_path)
    if sig is not None:
        sb = sig.GetRasterBand(1)
        sv = sb.ReadAsArray()
        nd = sb.GetNoDataValue()
        result["sigma_in_holes_positive"] = bool((sv[holes] > 0).all())
        result["sigma_nodata_outside"] = bool((sv[~holes] == nd).all())
    sig = None
    result["steps"].append("voidrepair")
    save()

    # Terrain derivatives from the menu on the repaired DEM: the seven layers in order.
    repaired_layer = next(lyr for lyr in QgsProject.instance().mapLayers().values()
                          if lyr.source() == repaired_path and lyr.name().endswith("repaired"))
    iface.setActiveLayer(repaired_layer)
    action = next(a for a in sub.actions() if a.text().startswith("Terrain derivatives"))
    action.trigger()
    base = repaired_layer.name()
    result["derivatives_finished"] = run_dialog(
        plugin.ui.menu.dialog, {"INPUT": repaired_layer.id(), "STREAM_THRESHOLD": 50,
                                "ASPECT": "TEMPORARY_OUTPUT"},
        lambda: named(f"{base} streams") and named(f"{base} slope"))
    plugin.ui.menu.dialog.close()
    result["derivatives_tree"], result["derivatives_visible"] = tree()
    streams = next((lyr for lyr in QgsProject.instance().mapLayers().values()
                    if lyr.name() == f"{base} streams"), None)
    result["stream_alpha"] = alphas(streams) if streams is not None else None
    iface.mapCanvas().refreshAllLayers()
    wait_until(lambda: False, 1.0)
    iface.mapCanvas().waitWhileRendering()
    shot("derivatives.png", iface.mainWindow())
    result["steps"].append("derivatives")
    save()

    # The example model: listed under Models, valid, labelled; run from its own dialog.
    import processing
    models = QgsApplication.processingRegistry().providerById("model")
    example = next((a for a in models.algorithms()
                    if a.displayName() == "DEM repair, super-resolve, derivatives"), None)
    result["example_model_id"] = example.id() if example is not None else None
    if example is not None:
        ok, issues = example.validate()
        result["example_valid"], result["example_issues"] = ok, issues
        result["example_outputs"] = {d.name(): d.description()
                                     for d in example.destinationParameterDefinitions()}
        root = QgsProject.instance().layerTreeRoot()
        for node in root.findLayers():
            node.setItemVisibilityChecked(False)
        iface.setActiveLayer(holed)
        dialog = processing.createAlgorithmDialog(example.id(), {})
        dialog.show()
        result["example_finished"] = run_dialog(
            dialog, {"dem": holed.id()},
            lambda: named("lidar_2m_holed repaired ×2 model streams"), 300)
        result["example_log"] = (dialog.findChild(QTextEdit, "txtLog").toPlainText()[-1500:]
                                 if dialog.findChild(QTextEdit, "txtLog") else "")
        shot("model_dialog.png", dialog)
        dialog.close()
        result["example_tree"], result["example_visible"] = tree()
        iface.mapCanvas().refreshAllLayers()
        wait_until(lambda: False, 1.0)
        iface.mapCanvas().waitWhileRendering()
        shot("model.png", iface.mainWindow())
    help_url = QgsApplication.processingRegistry().algorithmById("demsr:superresolve").helpUrl()
    result["help_url"] = help_url
    result["steps"].append("model")
    save()

    # Status & dependencies dialog.
    status = plugin.ui.open_status()
    wait_until(lambda: False, 0.5)
    result["status_text"] = status.browser.toPlainText()
    shot("status.png", status)
    status.close()

    # Missing torch, as a new user sees it: the message bar item and its button.
    import demsr.desktop.gui as gui
    from demsr.core.torch_policy import TorchState
    gui.torch_state = lambda: TorchState(False)
    gui.onnxruntime_version = lambda: ""  # and no ONNX Runtime either
    plugin.ui.torch_message = None
    result["message_pushed"] = plugin.ui.warn_if_torch_missing()
    result["message_again"] = plugin.ui.warn_if_torch_missing()  # once only
    bar = iface.messageBar()
    button = bar.findChild(type(status.install_button), "demsr_install_torch")
    result["install_button"] = button.text() if button else None
    wait_until(lambda: False, 0.3)
    shot("messagebar.png", iface.mainWindow())
    if button:
        button.click()
        wait_until(lambda: False, 1.0)
        installer = plugin.ui.installer_dialog
        result["installer_python"] = installer.python
        result["installer_build"] = installer.build.currentData()
        shot("installer.png", installer)
        # The install succeeds (pip itself is tested in test_installer.py): the window must
        # stop saying PyTorch is missing, without a restart.
        from demsr.desktop.installer.pipinstall import InstallResult
        item = plugin.ui.torch_message
        result["bar_item_before_install"] = item in bar.items()
        installer.finished(InstallResult(True, "torch 2.13.0 installed; ready to use, no "
                                         "restart needed.", version="2.13.0"))
        wait_until(lambda: False, 0.5)
        # popped from the bar (Qt deletes the widget later: findChild may still see it)
        result["bar_item_after_install"] = item in bar.items()
        try:
            result["bar_button_after_install"] = button.isVisible()
        except RuntimeError:  # deleted already
            result["bar_button_after_install"] = False
        result["bar_texts_after_install"] = [i.text() for i in bar.items()]
        result["installer_state_after"] = installer.installed_label.text()
        result["installer_message_after"] = installer.message.text()
        shot("installed.png", iface.mainWindow())
        installer.close()
    result["steps"].append("done")
    save()


def run():
    try:
        main()
    except Exception:
        result["error"] = traceback.format_exc()
    save()
    QgsApplication.exit(0)


QTimer.singleShot(1500, run)
