"""Terrain derivatives of a DEM file written to files: read, derive, write all-or-nothing."""
from __future__ import annotations

from typing import Optional

import numpy as np
import rasterio

from ..monitor import Monitor
from ..paths import check_distinct_paths
from ..nodata.find import require_valid, warn_sentinels
from ..raster.grid import Grid
from ..raster.io import GDAL_ENV, open_dem, read_band
from ..raster.write import DEFAULT_NODATA, atomic_outputs, check_output_path, gtiff_profile
from ..raster.space import require_room
from ..terrain import DEFAULT_STREAM_THRESHOLD, compute_derivatives
from ..terrain.cellsize import cell_sizes

STREAMS_NODATA = 255


def derive_to_files(input_path: str, band: int, targets: dict[str, str],
                    threshold: int = DEFAULT_STREAM_THRESHOLD,
                    monitor: Optional[Monitor] = None) -> None:
    """Write each derivative named in `targets` (derivative name -> GeoTIFF path)."""
    monitor = monitor or Monitor()
    check_distinct_paths({"INPUT": input_path}, {k.upper(): v for k, v in targets.items()})
    for dest in targets.values():
        check_output_path(dest, monitor.info)
    src = open_dem(input_path, band)
    require_room([(dest, _profile(name, src.grid)) for name, dest in targets.items()],
                 "the requested outputs")
    with rasterio.Env(**GDAL_ENV), rasterio.open(input_path) as ds:
        dem = read_band(ds, band)
    require_valid(int(np.isfinite(dem).sum()), input_path, band)
    warn_sentinels(dem, src, monitor)
    _report_cells(src.grid, monitor)
    result = compute_derivatives(dem, src.grid, set(targets), threshold, monitor.sub(0.0, 0.9))
    del dem
    _write(result, targets, src.grid, monitor.sub(0.9, 1.0))


def _report_cells(grid: Grid, monitor: Monitor) -> None:
    sizes = cell_sizes(grid)
    if grid.is_geographic:
        monitor.info(
            f"Geographic CRS: cells are {sizes.dx.min():.2f}–{sizes.dx.max():.2f} m wide and "
            f"{sizes.dy.mean():.2f} m tall (metres per degree at each row's latitude).")
    else:
        monitor.info(f"Cell size {sizes.dx[0]:g} × {sizes.dy[0]:g} (CRS units, taken as the "
                     "unit of the elevations).")


def _profile(name: str, grid: Grid) -> dict:
    if name == "streams":
        return gtiff_profile(grid, STREAMS_NODATA, dtype="uint8")
    return gtiff_profile(grid, DEFAULT_NODATA)


def _write(result: dict, targets: dict[str, str], grid: Grid, monitor: Monitor) -> None:
    """All outputs appear together or, on error, cancel or a full disk, none does."""
    names = list(targets)
    with atomic_outputs([(targets[n], _profile(n, grid)) for n in names], monitor.info) as ws:
        for i, (name, writer) in enumerate(zip(names, ws)):
            monitor.check()
            writer.write(result.pop(name), 0, 0)
            monitor.progress((i + 1) / len(targets))
        monitor.check()
