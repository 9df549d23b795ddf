"""Making the low-resolution input from a high-resolution DEM.

A coarse DEM cell is close to the mean elevation of its footprint, so block
mean is the realistic default. 'knn' is the seed project's k-nearest
average: the mean of the HR cells whose centres lie within `scale` HR
pixels of the LR cell centre (a wider, round footprint). 'bicubic' is
antialiased bicubic downsampling, 'nearest' picks the cell nearest the LR
centre (what the GISR fork actually did).
"""
from __future__ import annotations

from ..by_name import Registry

# name -> f(hr (B,1,sH,sW) tensor, scale) -> (B,1,H,W); the first is the default
DEGRADATIONS: Registry = Registry("degradation")


@DEGRADATIONS.register("blockmean")
def _blockmean(hr, scale: int):
    import torch.nn.functional as F

    return F.avg_pool2d(hr, scale)


@DEGRADATIONS.register("knn")
def _knn(hr, scale: int):
    import torch.nn.functional as F

    k = _knn_kernel(scale).to(hr.device, hr.dtype)
    return F.conv2d(F.pad(hr, (scale,) * 4, mode="replicate"), k, stride=scale)


@DEGRADATIONS.register("bicubic")
def _bicubic(hr, scale: int):
    import torch.nn.functional as F

    h, w = hr.shape[-2] // scale, hr.shape[-1] // scale
    return F.interpolate(hr, size=(h, w), mode="bicubic", antialias=True, align_corners=False)


@DEGRADATIONS.register("nearest")
def _nearest(hr, scale: int):
    return hr[..., scale // 2::scale, scale // 2::scale]


def _knn_kernel(scale: int):
    import torch

    offs = torch.arange(-scale, 2 * scale, dtype=torch.float64) + 0.5 - scale / 2
    dist2 = offs[:, None] ** 2 + offs[None, :] ** 2
    k = (dist2 <= scale * scale).to(torch.float32)
    return (k / k.sum())[None, None]


def degrade(hr, scale: int, method: str = "blockmean"):
    """(B,1,sH,sW) tensor → (B,1,H,W); sizes must be multiples of scale."""
    return DEGRADATIONS.get(method)(hr, scale)


def degrade_array(hr, scale: int, method: str = "blockmean"):
    """The same on a NumPy array (NaN propagates to the LR cells it touches)."""
    import numpy as np
    import torch

    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    t = torch.from_numpy(np.ascontiguousarray(hr[:h, :w], dtype=np.float32))[None, None]
    if method == "blockmean":  # exact NaN handling without padding effects
        return degrade(t, scale, method)[0, 0].numpy()
    lr = degrade(t.nan_to_num(0.0), scale, method)[0, 0].numpy()
    bad = degrade(t.isnan().float(), scale, "blockmean" if method != "knn" else "knn")
    lr[bad[0, 0].numpy() > 0] = np.nan
    return lr


def degrade_raster(hr_path: str, lr_path: str, scale: int, method: str = "blockmean",
                   band: int = 1):
    """Write the LR GeoTIFF of an HR DEM, each LR cell covering scale×scale HR cells.

    Returns the HR DemSource and the HR array (NaN = nodata), cropped to a
    multiple of `scale` so that super-resolving the LR file gives its grid back.
    """
    import rasterio

    from .grid import Grid
    from .io import open_dem, read_band
    from .write import write_array

    src = open_dem(hr_path, band)
    with rasterio.open(hr_path) as ds:
        hr = read_band(ds, band)
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = hr[:h, :w]
    t = src.grid.transform
    write_array(lr_path, degrade_array(hr, scale, method),
                Grid(t * t.scale(scale), w // scale, h // scale, src.grid.crs))
    return src, hr
