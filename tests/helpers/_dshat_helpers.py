"""Shared helpers for the DS-HAT tests: tiny models, holed real DEMs, a 4-band raster."""
from __future__ import annotations

import numpy as np
import rasterio

from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array

TERRAIN = ["slope", "plan_curvature", "profile_curvature", "tangential_curvature",
           "flow_accumulation", "streams"]
SPECTRAL = TERRAIN + ["s2_b1", "s2_b2", "s2_b3", "s2_b4"]
TINY = {"features": 8, "growth": 4, "blocks": 1, "dense_blocks": 2, "convs": 2,
        "support_features": 8, "se_blocks": 1, "se_radius": 3, "elev_radius": 2}


def tiny_dshat(path, spectral: bool = False, seed: int = 0, dilations=(), channels=None):
    """Save a small DS-HAT with random non-zero weights everywhere (so every input matters);
    `channels` overrides its support-stream channel names."""
    import torch

    from demsr.core.nets import checkpoint, registry

    torch.manual_seed(seed)
    names = channels or (SPECTRAL if spectral else TERRAIN)
    model = registry.build("dshat", 1, dict(TINY, aux_channels=list(names),
                                            dilations=list(dilations)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    checkpoint.save(checkpoint.from_model(model, "gdal-lanczos", {"data": ["test"]}), str(path))
    return model


def holed_dem(src_path, out_path, row0, col0, height, width, seed=0, coverage=0.08,
              pixel_size=None):
    """A crop of a real DEM with synthetic voids; optionally relabelled to another pixel size.
    Returns (truth, holed, voids, grid)."""
    from affine import Affine

    from demsr.core.nodata.synthetic import synthetic_voids

    with rasterio.open(src_path) as ds:
        data = read_band(ds, 1)[row0:row0 + height, col0:col0 + width]
        t = ds.transform * ds.transform.translation(col0, row0)
        crs = ds.crs
    if pixel_size:
        t = Affine(pixel_size, 0, t.c, 0, -pixel_size, t.f)
    grid = Grid(t, data.shape[1], data.shape[0], crs)
    voids = synthetic_voids(data, np.random.default_rng(seed), coverage=coverage)
    holed = data.copy()
    holed[voids] = np.nan
    write_array(str(out_path), holed, grid)
    return data, holed, voids, grid


def four_band_raster(dem_path, out_path, dst_crs="EPSG:4326", res_factor=0.7):
    """A real 4-band raster on another grid: elevation, slope, hillshade and aspect of a real
    DEM, warped into another CRS at another resolution (stands in for Sentinel-2 B1–B4)."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from demsr.core.terrain import compute_derivatives

    with rasterio.open(dem_path) as ds:
        dem = read_band(ds, 1)
        grid = Grid(ds.transform, ds.width, ds.height, ds.crs)
        src_crs, src_t, bounds = ds.crs, ds.transform, ds.bounds
    der = compute_derivatives(dem, grid, {"slope", "aspect"})
    shade = np.cos(np.radians(der["slope"]))
    bands = np.stack([dem, der["slope"], shade * 1000, der["aspect"]]).astype(np.float32)
    t, w, h = calculate_default_transform(src_crs, dst_crs, grid.width, grid.height, *bounds)
    t = t * t.scale(1 / res_factor)
    w, h = int(w * res_factor) + 2, int(h * res_factor) + 2
    out = np.full((4, h, w), np.nan, np.float32)
    for b in range(4):
        reproject(bands[b], out[b], src_transform=src_t, src_crs=src_crs, dst_transform=t,
                  dst_crs=dst_crs, resampling=Resampling.bilinear, src_nodata=np.nan,
                  dst_nodata=np.nan)
    profile = dict(driver="GTiff", width=w, height=h, count=4, dtype="float32", crs=dst_crs,
                   transform=t, nodata=-9999.0)
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(np.where(np.isfinite(out), out, -9999.0))
    return out_path
