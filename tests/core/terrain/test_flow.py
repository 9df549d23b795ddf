"""Depression filling, D8 routing, flat resolution and accumulation.

Known answers on synthetic terrain, invariants on real DEMs, and a cell-for-cell
comparison with pysheds (an established implementation of the same method:
priority-flood, Barnes' flat resolution, D8) on real DEMs.
"""
import numpy as np
import pytest
import rasterio
from affine import Affine

from demsr.core.errors import Cancelled, DemSrError
from demsr.core.raster.grid import Grid
from demsr.core.monitor import Monitor
from demsr.core.terrain import compute_derivatives
from demsr.core.terrain.cellsize import CellSizes
from demsr.core.terrain.flow import (D8_OFFSETS, _Padded, accumulate, fill_depressions,
                                     flow_accumulation, flow_receivers, streams)

PYSHEDS_DIRMAP = (64, 128, 1, 2, 4, 8, 16, 32)   # N, NE, E, SE, S, SW, W, NW


def _sizes(h, dx=1.0, dy=None):
    return CellSizes(np.full(h, float(dx)), np.full(h, float(dy or dx)))


def _route(z, dx=1.0, dy=None):
    z = np.asarray(z, np.float32)
    pad = _Padded(z, _sizes(z.shape[0], dx, dy))
    filled = fill_depressions(pad)
    rcv = flow_receivers(filled, pad)
    acc = accumulate(rcv, pad.valid.ravel()).reshape(pad.z.shape)[1:-1, 1:-1]
    return pad, filled[1:-1, 1:-1], rcv, acc


def _codes(pad, rcv):
    """D8 code (0..7 as D8_OFFSETS, -1 none) of each cell of the unpadded grid."""
    idx = np.arange(pad.z.size).reshape(pad.z.shape)[1:-1, 1:-1]
    r = rcv[idx]
    codes = np.full(idx.shape, -1)
    for k, off in enumerate(pad.offsets):
        codes[(r >= 0) & (r - idx == off)] = k
    return codes


def _read(path, rounded=False):
    with rasterio.open(path) as ds:
        z = ds.read(1, masked=True).astype(np.float32).filled(np.nan)
        return (np.round(z) if rounded else z), ds.res


def test_plane_drains_row_by_row():
    z = np.tile(np.arange(30, 0, -1, dtype=np.float32)[:, None], (1, 12))  # falls to the south
    _, filled, _, acc = _route(z)
    np.testing.assert_array_equal(filled, z)
    np.testing.assert_array_equal(acc, np.tile(np.arange(1, 31)[:, None], (1, 12)))


def test_pit_is_filled_and_drained_through_its_spill_point():
    z = np.full((9, 9), 10.0, np.float32)
    z[1:-1, 1:-1] = 5.0                       # a basin …
    z[4, 0] = 7.0                             # … that spills west at 7 m
    z[4, 4] = 1.0                             # with a pit in it
    _, filled, _, acc = _route(z)
    inner = filled[1:-1, 1:-1]
    assert np.all(inner == 7.0)               # filled to the spill level, no higher
    assert filled[4, 0] == 7.0 and filled[0, 0] == 10.0
    # every cell, the walls included, ends up leaving through the spill cell
    assert acc[4, 0] == z.size
    assert np.all(acc[1:-1, 1:-1] < z.size)


def test_large_flat_drains_to_its_only_outlet():
    z = np.full((40, 50), 100.0, np.float32)
    z[0, :] = z[-1, :] = z[:, 0] = z[:, -1] = 200.0   # walls …
    z[20, -1] = 50.0                                   # … with one gap
    pad, _, rcv, acc = _route(z)
    assert acc[20, -1] == z.size              # the walls drain inwards, then out too
    assert acc[19:22, -2].sum() >= 38 * 48     # the flat reaches it through its 3 neighbours
    # Barnes: flow away from the walls as well as towards the outlet: no cell drains
    # into a wall cell and the flat's directions are not all parallel.
    codes = _codes(pad, rcv)[1:-1, 1:-2]
    assert len(np.unique(codes)) >= 3


def test_voids_are_outlets_and_never_crossed():
    y, x = np.mgrid[-20:21, -20:21]
    z = (np.hypot(x, y) * 2.0).astype(np.float32)    # a bowl …
    z[18:23, 18:23] = np.nan                          # … whose bottom is a void
    z[0, 20] = -50                                    # a low notch on the rim
    pad, filled, rcv, acc = _route(z)
    valid = np.isfinite(z)
    np.testing.assert_array_equal(filled[valid], z[valid])   # nothing to fill: water leaves
    assert np.isnan(acc[~valid]).sum() == 0 and np.all(acc[~valid] == 0)
    ends = rcv[np.arange(pad.z.size).reshape(pad.z.shape)[1:-1, 1:-1]] == -1
    beside_void = valid & (np.hypot(x, y) < 4) & pad.outlet[1:-1, 1:-1]
    # paths end in the void (most of the bowl) or at the raster edge (outside the rim)
    assert acc[ends & beside_void].sum() > 0.6 * valid.sum()
    assert acc[ends].sum() == valid.sum()


def test_d8_uses_true_cell_shape():
    """On a plane falling 1 per cell east and 1.5 per cell south, square cells drain SE
    (2.5/√2 = 1.77 beats 1.5 and 1); cells a quarter as wide as tall (geographic grids
    near 75°) drain E (1/0.25 = 4 beats 2.5/1.03 = 2.43 and 1.5)."""
    rows, cols = np.mgrid[0:20, 0:20]
    z = (1000 - 1.0 * cols - 1.5 * rows).astype(np.float32)
    pad, _, rcv, _ = _route(z, 1.0)
    assert _codes(pad, rcv)[5, 5] == D8_OFFSETS.index((1, 1))
    pad, _, rcv, _ = _route(z, 0.25, 1.0)
    assert _codes(pad, rcv)[5, 5] == D8_OFFSETS.index((0, 1))


@pytest.mark.parametrize("name", ["pysheds_dem_3arcsec.tif", "flopy_sagehen_10m.tif",
                                  "oso_landslide_lidar_1.83m.tif"])
def test_real_dem_invariants(dems_dir, name):
    z, res = _read(dems_dir / name)
    z = z[:400, :400]
    pad, filled, rcv, acc = _route(z, res[0], res[1])
    valid = np.isfinite(z)
    assert np.all(filled[valid] >= z[valid])
    assert np.all(acc[valid] >= 1)
    # every cell's water ends somewhere: accumulation at the path ends sums to all cells
    ends = valid.ravel() & (rcv[np.arange(pad.z.size).reshape(pad.z.shape)[1:-1, 1:-1].ravel()] < 0)
    assert acc.ravel()[ends].sum() == valid.sum()
    # filled surface has no interior pits: every non-outlet cell drains
    codes = _codes(pad, rcv)
    assert np.all(codes[valid & ~pad.outlet[1:-1, 1:-1]] >= 0)


def _downstream(fdir, starts):
    """Cells on pysheds' flow paths from the given cells (following its D8 codes)."""
    h, w = fdir.shape
    step = {v: D8_OFFSETS[k] for k, v in enumerate(PYSHEDS_DIRMAP)}
    seen = np.zeros(fdir.shape, bool)
    for r, c in zip(*np.nonzero(starts)):
        while 0 <= r < h and 0 <= c < w and not seen[r, c]:
            seen[r, c] = True
            if fdir[r, c] not in step:
                break
            dr, dc = step[fdir[r, c]]
            r, c = r + dr, c + dc
    return seen


@pytest.mark.parametrize("name,rounded", [
    ("pysheds_dem_3arcsec.tif", False),          # SRTM-derived, integer metres
    ("demcompare_srtm_ref_3arcsec_turkey.tif", False),
    ("mpl_jacksboro_fault_3arcsec.tif", False),
    ("longyearbyen_1995_20m_xdem.tif", True),    # projected, rounded to whole metres
])
def test_matches_pysheds_cell_for_cell(dems_dir, tmp_path, name, rounded, monkeypatch):
    """Same filled DEM, same D8 directions on every non-outlet cell, same accumulation and
    streams except downstream of the few edge cells that pysheds treats differently:
    there a level outlet cell (no lower neighbour) leaves the grid in ours, while pysheds'
    2ε inflation of low-edge cells sends it sideways into the next edge cell."""
    import pysheds.grid as pgrid  # installed by `make venv` (scripts/requirements-test.txt)
    if not hasattr(np, "in1d"):  # NumPy 2.4 removed it; pysheds 0.5 (the reference) calls it
        monkeypatch.setattr(np, "in1d", lambda a, b, **kw: np.isin(a, b, **kw).ravel(),
                            raising=False)
    z, res = _read(dems_dir / name, rounded)
    z = z[:600, :600]
    with rasterio.open(dems_dir / name) as ds:
        profile = dict(driver="GTiff", width=z.shape[1], height=z.shape[0], count=1,
                       dtype="float64", crs=ds.crs, transform=ds.transform, nodata=-99999.0)
    src = tmp_path / "dem64.tif"
    with rasterio.open(src, "w", **profile) as out:
        out.write(np.where(np.isnan(z), -99999.0, z).astype(np.float64), 1)
    g = pgrid.Grid.from_raster(str(src))
    dem = g.read_raster(str(src))
    flooded = g.fill_depressions(g.fill_pits(dem))
    fdir = np.asarray(g.flowdir(g.resolve_flats(flooded), dirmap=PYSHEDS_DIRMAP))
    ref_acc = np.asarray(g.accumulation(g.flowdir(g.resolve_flats(flooded))))
    # pysheds measures D8 distances in CRS units (degrees here), so give ours the same cells.
    pad, filled, rcv, acc = _route(z, res[0], res[1])
    valid = np.isfinite(z)
    np.testing.assert_array_equal(filled[valid], np.asarray(flooded)[valid])
    ref_codes = np.full(fdir.shape, -1)
    for k, v in enumerate(PYSHEDS_DIRMAP):
        ref_codes[fdir == v] = k
    codes = _codes(pad, rcv)
    outlet = pad.outlet[1:-1, 1:-1]
    np.testing.assert_array_equal(codes[valid & ~outlet], ref_codes[valid & ~outlet])
    differ = valid & (codes != ref_codes)
    assert differ.sum() <= 0.02 * outlet.sum()
    explained = _downstream(fdir, differ)
    same = valid & ~explained
    np.testing.assert_array_equal(acc[same], ref_acc[same])
    assert same.sum() > 0.99 * valid.sum()
    np.testing.assert_array_equal(acc[same] >= 1500, ref_acc[same] >= 1500)
    assert (acc >= 1500).sum() > 100


def test_streams_follow_threshold_and_nodata():
    acc = np.array([[1, 1499, 1500, np.nan]], np.float32)
    np.testing.assert_array_equal(streams(acc, 1500), [[0, 0, 1, np.nan]])


def test_compute_derivatives_flow_outputs_and_errors(dems_dir):
    z, res = _read(dems_dir / "flopy_sagehen_10m.tif")
    z = z[:200, :250]
    with rasterio.open(dems_dir / "flopy_sagehen_10m.tif") as ds:
        grid = Grid(ds.transform, 250, 200, ds.crs)
    out = compute_derivatives(z, grid, {"flow_accumulation", "streams"}, 100)
    assert set(out) == {"flow_accumulation", "streams"}
    valid = np.isfinite(z)
    assert np.array_equal(np.isfinite(out["flow_accumulation"]), valid)
    np.testing.assert_array_equal(out["streams"][valid], out["flow_accumulation"][valid] >= 100)
    np.testing.assert_array_equal(out["flow_accumulation"], flow_accumulation(z, _sizes(200, *res)))
    with pytest.raises(DemSrError, match="at least 1"):
        compute_derivatives(z, grid, {"streams"}, 0)
    with pytest.raises(DemSrError, match="Unknown"):
        compute_derivatives(z, grid, {"wetness"})
    with pytest.raises(DemSrError, match="no valid cells"):
        compute_derivatives(np.full_like(z, np.nan), grid, {"slope"})


def test_cancel_stops_flow_routing(dems_dir):
    z, res = _read(dems_dir / "pysheds_dem_3arcsec.tif")
    grid = Grid(Affine(res[0], 0, 0, 0, -res[1], 0), z.shape[1], z.shape[0], None)
    calls = []
    monitor = Monitor(cancelled=lambda: len(calls) > 2, progress=calls.append)
    with pytest.raises(Cancelled):
        compute_derivatives(z, grid, {"flow_accumulation", "slope"}, monitor=monitor)


def test_flat_resolution_memory_does_not_follow_the_flats(dems_dir):
    """On a 768² mosaic of the 1 m lidar, where depression filling leaves large flats
    (about half the cells raised), flow routing's NumPy peak stays near its whole-grid
    arrays: flat cells are handled in bounded batches (154 bytes per pixel when a batch
    held 2^20 cells, 56 with 2^16)."""
    import tracemalloc

    z, res = _read(dems_dir / "pypi_lidar_dem_1m.tif")
    tile = np.block([[z, z[:, ::-1]], [z[::-1], z[::-1, ::-1]]])[:768, :768].copy()
    assert tile.shape == (768, 768) and np.isfinite(tile).all()
    sizes = _sizes(768, res[0], res[1])
    tracemalloc.start()
    try:
        acc = flow_accumulation(tile, sizes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pad = _Padded(tile, sizes)
    raised = (fill_depressions(pad) > pad.z).sum() / tile.size
    assert raised > 0.3                       # the flats are there
    assert np.nanmax(acc) > 1000
    assert peak / tile.size < 80, f"{peak / tile.size:.0f} bytes per pixel"
