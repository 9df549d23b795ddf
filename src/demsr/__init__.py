"""DEM Super-Resolution QGIS plugin.

Nothing here imports qgis or torch at module level, so `demsr.core` can be
imported and tested as plain Python.
"""
import os
import sys


def dependency_dir() -> str:
    """Folder holding the plugin's private Python dependencies (torch).

    They live beside the plugins folder of the QGIS profile so that
    reinstalling the plugin keeps them; DEMSR_DEPS_DIR overrides it.
    """
    override = os.environ.get("DEMSR_DEPS_DIR")
    if override:
        return override
    plugins_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(plugins_dir), "demsr-deps")


def _add_dependency_dir() -> None:
    # Put first, so torch gets the versions of its own dependencies it was
    # installed with (Debian's older sympy breaks torch's optimisers). QGIS's
    # numpy still wins: `make deps` never leaves a numpy in that folder.
    path = dependency_dir()
    if os.path.isdir(path) and path not in sys.path:
        sys.path.insert(0, path)


_add_dependency_dir()


def classFactory(iface):  # noqa: N802 (QGIS API name)
    from .plugin import DemSrPlugin

    return DemSrPlugin(iface)
