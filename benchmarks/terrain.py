"""Benchmark: all six DS-HAT terrain derivatives of a 4000×4000 real-terrain DEM.

The DEMs are shared real DEMs resampled (cubic) to 4000×4000 with GDAL: the
SRTM tile of Turkey (EPSG:4326, so the geographic cell-size path runs) and
the Longyearbyen DEM (EPSG:25833, with fjord flats). Target: ≤ 30 s each on
the 2-core development machine.

    .venv/bin/python benchmarks/terrain.py        (or via `make bench`)
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = 4000
TARGET_S = 30.0
SOURCES = {
    "srtm_turkey_geographic": "demcompare_srtm_ref_3arcsec_turkey.tif",
    "longyearbyen_projected": "longyearbyen_1995_20m_xdem.tif",
}


def _dem_4000(name: str, src: Path) -> Path:
    """A cached 4000×4000 cubic resampling of a shared DEM (same extent and CRS)."""
    from osgeo import gdal

    out = ROOT / "build" / "bench" / f"terrain_{name}_{SIZE}.tif"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        gdal.UseExceptions()
        gdal.Warp(str(out), str(src), width=SIZE, height=SIZE, resampleAlg="cubic",
                  outputType=gdal.GDT_Float32, creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    return out


def run() -> dict:
    """Seconds (and peak memory) for the six derivatives of each 4000×4000 DEM."""
    import demsr  # noqa: F401 - puts the plugin's private dependency folder on sys.path
    import numpy as np
    import rasterio

    from demsr.core.raster.io import read_band
    from demsr.core.raster.grid import Grid
    from demsr.core.terrain import DSHAT_DERIVATIVES, compute_derivatives

    dems = ROOT.parent / "shared" / "data" / "dems"
    results = {}
    for name, file in SOURCES.items():
        path = _dem_4000(name, dems / file)
        with rasterio.open(path) as ds:
            dem = read_band(ds, 1)
            grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
        t0 = time.perf_counter()
        out = compute_derivatives(dem, grid, set(DSHAT_DERIVATIVES), 1500)
        seconds = time.perf_counter() - t0
        results[name] = {
            "seconds": round(seconds, 2),
            "within_target": seconds <= TARGET_S,
            "size": f"{grid.width}x{grid.height}",
            "stream_cells": int(np.nansum(out["streams"])),
            "max_accumulation": float(np.nanmax(out["flow_accumulation"])),
        }
        del out, dem
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results["target_s"] = TARGET_S
    return results


if __name__ == "__main__":
    res = run()
    print(json.dumps(res, indent=2))
    for name in SOURCES:
        print(f"terrain derivatives, 6 outputs, {res[name]['size']} {name}: "
              f"{res[name]['seconds']:.1f} s (target ≤ {TARGET_S:.0f} s)")
