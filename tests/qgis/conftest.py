"""QGIS-side fixtures: the demsr provider registered in a real QgsApplication."""
import pytest
from qgis.core import QgsApplication


@pytest.fixture(scope="session")
def provider(qgis_processing):
    from demsr.algorithms.provider import DemSrProvider

    registry = QgsApplication.processingRegistry()
    p = registry.providerById("demsr")
    if p is None:
        p = DemSrProvider()
        registry.addProvider(p)
    yield p
