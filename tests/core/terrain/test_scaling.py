"""Normalisers: constants fitted once and applied identically to every tile."""

import numpy as np
import pytest
import rasterio

from demsr.core.errors import DemSrError
from demsr.core.raster.grid import Grid
from demsr.core.terrain import DSHAT_DERIVATIVES, compute_derivatives
from demsr.core.terrain.scaling import Normaliser, NormaliserSet, fit_normaliser


@pytest.fixture(scope="module")
def derivatives(dems_dir):
    with rasterio.open(dems_dir / "whiteboxR_DEM_90m.tif") as ds:
        z = ds.read(1, masked=True).astype(np.float32).filled(np.nan)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
    return compute_derivatives(z, grid, set(DSHAT_DERIVATIVES), 200)


def test_tiles_agree_with_whole_raster(derivatives):
    norms = NormaliserSet.fit(derivatives)
    whole = norms.apply(derivatives)
    for r0, c0 in ((0, 0), (50, 120), (100, 30)):
        tile = {k: v[r0:r0 + 64, c0:c0 + 64] for k, v in derivatives.items()}
        got = norms.apply(tile)
        for k in tile:
            np.testing.assert_array_equal(got[k], whole[k][r0:r0 + 64, c0:c0 + 64])
    # and a tile is not rescaled to its own range (that would reach 0 and 1 in every tile)
    tile = norms.apply({"flow_accumulation": derivatives["flow_accumulation"][:20, :20]})
    assert np.nanmax(tile["flow_accumulation"]) < 0.9


def test_kinds_and_ranges(derivatives):
    norms = NormaliserSet.fit(derivatives).normalisers
    assert norms["slope"] == Normaliser("minmax", 0.0, 90.0)
    assert norms["plan_curvature"].kind == "arctan"
    assert norms["flow_accumulation"].kind == "log"
    for k, v in NormaliserSet(norms).apply(derivatives).items():
        finite = v[np.isfinite(v)]
        assert finite.min() >= 0 and finite.max() <= 1
        assert np.array_equal(np.isnan(v), np.isnan(derivatives[k]))   # nodata stays nodata
    acc = derivatives["flow_accumulation"]
    n = norms["flow_accumulation"]
    assert n.lo == pytest.approx(np.log(2)) and n.hi == pytest.approx(np.log1p(np.nanmax(acc)))
    # arctan: monotone, odd around the middle of its range, curvature 0 keeps its place
    c = np.linspace(-1e-2, 1e-2, 101)
    y = norms["profile_curvature"](c)
    assert np.all(np.diff(y) >= 0)


def test_bad_constants_are_refused():
    with pytest.raises(DemSrError):
        Normaliser("minmax", 1.0, 1.0)
    with pytest.raises(DemSrError):
        Normaliser("zscore", 0.0, 1.0)
    with pytest.raises(DemSrError, match="no valid cells"):
        fit_normaliser(np.full(4, np.nan), "minmax")
    with pytest.raises(DemSrError, match="No stored normalisation"):
        NormaliserSet({}).apply({"slope": np.zeros(2)})
