"""QGIS wiring: registers the Processing provider, nothing else."""
from qgis.core import QgsApplication

from .algorithms.provider import DemSrProvider


class DemSrPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        # qgis_process calls only this (iface is None there).
        self.provider = DemSrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
