"""A DEM one cell high or wide has no terrain derivatives: the message says so, not that the
raster has no valid cells."""
import numpy as np
import pytest
import rasterio

from demsr.core.errors import DemSrError
from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.terrain import DSHAT_DERIVATIVES, NormaliserSet, compute_derivatives


@pytest.mark.parametrize("height,width", [(1, 1), (1, 50), (50, 1)])
def test_a_thin_dem_is_named_as_such(crop, height, width):
    path = crop("flopy_sagehen_10m.tif", 100, 100, height, width)
    with rasterio.open(path) as ds:
        dem = read_band(ds, 1)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    assert np.isfinite(dem).all()  # every cell is valid
    derivatives = compute_derivatives(dem, grid, DSHAT_DERIVATIVES)
    with pytest.raises(DemSrError, match="1 cell high or wide") as err:
        NormaliserSet.fit(derivatives)
    assert "no valid cells" not in str(err.value)
