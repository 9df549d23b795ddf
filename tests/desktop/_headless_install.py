"""Installs a plugin ZIP into a fresh profile with QGIS's own installer code (pyplugin_installer's
unzip, then qgis.utils' plugin loader, as qgis_process and the Plugin Manager do), headless.
Prints one JSON line: what loaded. Usage: python3 _headless_install.py ZIP PROFILE_DIR"""
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path[:0] = ["/usr/share/qgis/python", "/usr/share/qgis/python/plugins"]
from qgis.core import QgsApplication  # noqa: E402

zip_path, profile = sys.argv[1], sys.argv[2]
app = QgsApplication([], False, profile)
app.initQgis()
import qgis.utils  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402
from pyplugin_installer.unzip import unzip  # noqa: E402

Processing.initialize()
plugins_dir = os.path.join(profile, "python", "plugins")
os.makedirs(plugins_dir, exist_ok=True)
unzip(zip_path, plugins_dir)
qgis.utils.plugin_paths = [plugins_dir]
qgis.utils.home_plugin_path = plugins_dir
sys.path.insert(0, plugins_dir)
qgis.utils.updateAvailablePlugins()
out = {"available": "demsr" in qgis.utils.available_plugins,
       "loaded": qgis.utils.loadPlugin("demsr")}
out["started"] = qgis.utils.startProcessingPlugin("demsr")
module = sys.modules.get("demsr")
out["module_file"] = getattr(module, "__file__", None)
provider = QgsApplication.processingRegistry().providerById("demsr")
out["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
out["desktop_imported"] = any(m.startswith("demsr.desktop") for m in sys.modules)
out["metadata_version"] = qgis.utils.pluginMetadata("demsr", "version")
print(json.dumps(out))
app.exitQgis()
