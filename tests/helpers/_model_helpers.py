"""Shared helpers for the model/training tests: real DEM crops and tiny models."""
from __future__ import annotations

import numpy as np
import rasterio

from demsr.core.raster.grid import Grid
from demsr.core.raster.io import read_band
from demsr.core.raster.write import write_array


def dem_crop(src_path, out_path, row0: int, col0: int, size: int) -> np.ndarray:
    """Write a size×size crop of a real DEM (same CRS, shifted transform) and return it."""
    with rasterio.open(src_path) as ds:
        data = read_band(ds, 1)[row0:row0 + size, col0:col0 + size]
        t = ds.transform * ds.transform.translation(col0, row0)
        grid = Grid(t, data.shape[1], data.shape[0], ds.crs)
    write_array(str(out_path), data, grid)
    return data


def tiny_fast(scale: int, seed: int = 0):
    """A small FastSR with random (non-zero) weights everywhere, so every layer matters."""
    import torch

    from demsr.core.nets import registry

    torch.manual_seed(seed)
    model = registry.build("fast", scale, {"channels": 8, "blocks": 2})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def model_tiled_and_untiled(src, model_path: str, scale: float, folder) -> tuple:
    """Super-resolve `src` with a model as one tile and as 64-px tiles in batches of 3:
    (untiled array, tiled array, tiles of the tiled run)."""
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

    outs = []
    for tile, batch in ((1024, 1), (64, 3)):
        out = str(folder / f"o{tile}.tif")
        res = superresolve(SuperResolveRequest(str(src), out, scale=scale, method="model",
                                               model_path=model_path, tile_size=tile,
                                               batch_size=batch, device="cpu"))
        with rasterio.open(out) as ds:
            outs.append(read_band(ds, 1))
    return outs[0], outs[1], res.tiles


def tiny_sr_config(hr_dem: str, out, **kw):
    """A small, fast FastSR ×2 training on one DEM (override any field with kw)."""
    from demsr.core.training.config import SRTrainConfig

    base = dict(inputs=[hr_dem], output_model=str(out), architecture="fast", scale=2,
                patch_size=32, epochs=2, batch_size=8, learning_rate=2e-3, validation=0.25,
                device="cpu", steps_per_epoch=30, seed=3, loss="mse", gradient_weight=0.1,
                hparams={"channels": 8, "blocks": 1})
    base.update(kw)
    return SRTrainConfig(**base)
