"""Where the evaluation counts: a polygon mask or an extent, rasterised onto the grid."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from ..errors import DemSrError
from ..raster.grid import Grid


def extent_polygon(bounds: Sequence[float]) -> dict:
    """GeoJSON polygon of (xmin, ymin, xmax, ymax)."""
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if not (x1 > x0 and y1 > y0):
        raise DemSrError(f"The extent {x0:g}, {y0:g} : {x1:g}, {y1:g} is empty.")
    return {"type": "Polygon",
            "coordinates": [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]}


def mask_from_geometries(geometries: Sequence[dict], crs: Optional[str], grid: Grid
                         ) -> np.ndarray:
    """True on cells whose centre lies inside any of the GeoJSON geometries.

    `crs` (WKT or an authority string) is the geometries' CRS; they are
    transformed into the grid's CRS first. None = already in the grid's CRS.
    """
    geoms = [g for g in geometries if g]
    if not geoms:
        raise DemSrError("The mask layer has no polygon to evaluate inside.")
    if crs and grid.crs is not None:
        src = CRS.from_user_input(crs)
        if src != grid.crs:
            try:
                geoms = [transform_geom(src, grid.crs, g) for g in geoms]
            except Exception as exc:  # PROJ errors come in several types
                raise DemSrError(f"The mask's CRS cannot be transformed into the DEM's CRS "
                                 f"({exc}).") from None
    mask = rasterize(((g, 1) for g in geoms), out_shape=(grid.height, grid.width),
                     transform=grid.transform, fill=0, dtype="uint8")
    return mask.astype(bool)
