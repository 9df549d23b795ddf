"""osgeo.gdal with its error mode stated: GDAL ≥ 3.9 (Debian 13) warns with a FutureWarning in
every process where nobody chose between exceptions and return codes. This code checks return
codes (None on failure); a process that already chose exceptions (QGIS, another plugin) keeps
them, so nothing changes for anyone else in the process."""
from __future__ import annotations


def osgeo_gdal():
    """The osgeo.gdal module, with return codes stated unless exceptions were chosen."""
    from osgeo import gdal

    if not gdal.GetUseExceptions():
        gdal.DontUseExceptions()
    return gdal
