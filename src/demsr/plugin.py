"""QGIS wiring: the Processing provider always; menu, dialogs and styles only with a window."""
from qgis.core import QgsApplication

from .algorithms.provider import DemSrProvider


class DemSrPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.ui = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        # qgis_process calls only this (iface is None there): nothing from desktop/ loads.
        self.provider = DemSrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        from .desktop.gui import DesktopUi

        self.ui = DesktopUi(self.iface)
        self.ui.init()

    def unload(self):
        if self.ui is not None:
            self.ui.unload()
            self.ui = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
