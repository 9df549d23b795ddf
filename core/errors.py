"""Exceptions that carry a message meant for the user.

Algorithms turn DemSrError into QgsProcessingException unchanged, so each
message says what is wrong and what to do about it.
"""


class DemSrError(Exception):
    """A user-facing problem with the input, parameters or environment."""


class Cancelled(Exception):
    """The user cancelled; partial outputs have been removed."""


class TorchMissing(DemSrError):
    """PyTorch is needed but cannot be imported."""

    def __init__(self, detail: str = ""):
        msg = (
            "This algorithm needs PyTorch, which is not installed for the Python that QGIS "
            "uses. In QGIS: Raster ▸ DEM Super-Resolution ▸ Install / repair dependencies…; "
            "from the plugin's source folder: `make deps`; or install it with "
            "`python3 -m pip install --target <QGIS profile>/python/demsr-deps torch==2.13.0` "
            "(use the same python3 as QGIS and do not upgrade numpy), then restart QGIS."
        )
        if detail:
            msg += f" (import error: {detail})"
        super().__init__(msg)
