"""Area average as a fixed separable linear map, for training at any factor.

A coarser cell is the area-weighted mean of the finer cells it covers, partial cells by
their overlap: what GDAL's 'average' (core.raster.warp.area_average, gdalwarp -r average)
computes, and what a coarser sensor records. Written as matrices (`out = A_y @ x @ A_xᵀ`)
it is differentiable, so a network can be trained *through* the same step the engine
finishes with (FactorModelUpsampler, finish 'average'): the LR input is the HR crop area-
averaged onto a grid f times coarser, and the network's ×s output is area-averaged onto
the HR grid before the loss. At an integer factor it is the block mean.
"""
from __future__ import annotations

import math

import numpy as np

from ..nets.coverage import FINISH_METHODS
from ..raster.warp import area_weights


def area_matrix(n_src: int, n_dst: int, ratio: float, offset: float = 0.0) -> np.ndarray:
    """Dense core.raster.warp.area_weights (the engine's area average), for torch."""
    return area_weights(n_src, n_dst, ratio, offset).toarray()


def coarse_size(n_hr: int, factor: float) -> int:
    """Whole cells of a grid `factor` times coarser that fit in n_hr fine cells."""
    return int(math.floor(n_hr / factor + 1e-9))


def apply(x, a_y, a_x):
    """A_y @ x @ A_xᵀ on the last two axes of a torch tensor (any leading shape)."""
    return a_y.to(x.dtype) @ x @ a_x.to(x.dtype).transpose(-1, -2)


def to_torch(a: np.ndarray, device="cpu"):
    import torch

    return torch.from_numpy(a.astype(np.float32)).to(device)


def gdal_matrix(n_src: int, n_dst: int, ratio: float, offset: float, method: str) -> np.ndarray:
    """(n_dst, n_src) weights of GDAL's `method` kernel (core.raster.warp.resample, as the
    engine calls it) along one axis, target cell i spanning source [offset + i·ratio,
    offset + (i+1)·ratio). GDAL's warp kernels are separable, so the 2-D warp is
    M_y @ x @ M_xᵀ away from the edges. Measured, not re-implemented: one warp per source
    row of an image whose row j is 1 (the other axis then sums to 1)."""
    from affine import Affine

    from ..raster.warp import resample

    width = 16
    src_t = Affine(1.0, 0.0, 1000.0, 0.0, -1.0, 5000.0)
    dst_t = Affine(1.0, 0.0, 1000.0, 0.0, -ratio, 5000.0 - offset)
    m = np.zeros((n_dst, n_src))
    img = np.zeros((n_src, width), np.float32)
    for j in range(n_src):
        img[j] = 1.0
        m[:, j] = resample(img, src_t, (n_dst, width), dst_t, method)[:, width // 2]
        img[j] = 0.0
    return m


def finish_matrix(n_lr: int, scale: int, factor: float, first: int, size: int,
                  method: str = "average") -> np.ndarray:
    """(size, n_lr·scale) map from a ×scale network output over n_lr LR cells onto HR rows
    [first, first + size): each LR cell is `factor` HR px, each output cell factor/scale HR
    px, so an HR pixel spans scale/factor (≥ 1) output cells. `method`: the engine's finish,
    'average' (exact overlap weights) or 'cubicspline' (GDAL's kernel, gdal_matrix)."""
    ratio = scale / factor
    if ratio < 1 - 1e-9:
        raise ValueError(f"a ×{scale} output cannot be area-averaged onto a ×{factor:g} grid")
    if method == "average":
        return area_matrix(n_lr * scale, size, ratio, offset=first * ratio)
    if method not in FINISH_METHODS:
        raise ValueError(f"unknown finish '{method}'")
    return gdal_matrix(n_lr * scale, size, ratio, first * ratio, method)
