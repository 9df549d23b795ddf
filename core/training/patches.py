"""Training and validation patches from HR DEMs.

Each raster is cut into square blocks; a share of them (chosen with the
seed) is the validation set, and no training crop, context included, may
touch a validation block or a nodata cell (checked with integral images).
Training crops are random and randomly flipped/rotated; validation crops
are the validation blocks themselves, fixed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio

from ..errors import DemSrError
from ..raster_io import open_dem, read_band


@dataclass
class Raster:
    name: str
    data: np.ndarray          # float32, NaN = nodata
    res: tuple[float, float]
    geographic: bool
    lat: float


def load_raster(path: str, band: int = 1) -> Raster:
    src = open_dem(path, band)
    with rasterio.open(path) as ds:
        data = read_band(ds, band)
    bounds = src.grid.bounds
    return Raster(os.path.basename(path), data, src.grid.res, src.grid.is_geographic,
                  (bounds[1] + bounds[3]) / 2)


def _integral(mask: np.ndarray) -> np.ndarray:
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    out[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    return out


def _count(ii: np.ndarray, r: np.ndarray, c: np.ndarray, size: int) -> np.ndarray:
    return ii[r + size, c + size] - ii[r, c + size] - ii[r + size, c] + ii[r, c]


@dataclass
class PatchSet:
    rasters: list[Raster]
    crop: int                  # HR pixels per crop side, context included
    train_ok: list[np.ndarray]  # per raster: integral image of cells a training crop may not touch
    val_crops: list[tuple[int, int, int]]  # (raster index, row, col)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
        """n random augmented training crops (n, crop, crop) and their raster indices."""
        # sqrt(area): large rasters are drawn more often, small ones still often enough
        weights = np.sqrt([max(0, (r.data.shape[0] - self.crop + 1) *
                                  (r.data.shape[1] - self.crop + 1)) for r in self.rasters])
        weights /= weights.sum()
        out = np.empty((n, self.crop, self.crop), np.float32)
        idx: list[int] = []
        filled = 0
        for _ in range(1000):
            k = rng.choice(len(self.rasters), size=n - filled, p=weights)
            for ri in k:
                r = self.rasters[ri]
                rows, cols = r.data.shape[0] - self.crop + 1, r.data.shape[1] - self.crop + 1
                rr, cc = rng.integers(0, rows, 16), rng.integers(0, cols, 16)
                ok = np.flatnonzero(_count(self.train_ok[ri], rr, cc, self.crop) == 0)
                if ok.size == 0:
                    continue
                patch = r.data[rr[ok[0]]:rr[ok[0]] + self.crop, cc[ok[0]]:cc[ok[0]] + self.crop]
                patch = np.rot90(patch, int(rng.integers(4)))
                if rng.random() < 0.5:
                    patch = patch[:, ::-1]
                out[filled] = patch
                idx.append(int(ri))
                filled += 1
            if filled == n:
                return out, idx
        raise DemSrError("Could not find training patches free of nodata and validation "
                         "blocks; use larger or more complete DEMs, or a smaller PATCH_SIZE.")

    def validation(self) -> tuple[np.ndarray, list[int]]:
        crops = np.stack([self.rasters[i].data[r:r + self.crop, c:c + self.crop]
                          for i, r, c in self.val_crops]) if self.val_crops else \
            np.empty((0, self.crop, self.crop), np.float32)
        return crops.astype(np.float32), [i for i, _, _ in self.val_crops]


def make_patch_set(rasters: list[Raster], crop: int, val_share: float, seed: int,
                   warn=lambda _m: None) -> PatchSet:
    """Split every raster into validation blocks and training area."""
    rng = np.random.default_rng(seed)
    kept, train_ok, val = [], [], []
    for r in rasters:
        h, w = r.data.shape
        if h < crop or w < crop:
            warn(f"{r.name}: {w}×{h} px is smaller than one {crop}-px training crop; skipped.")
            continue
        nodata = np.isnan(r.data)
        blocked = nodata.copy()
        nb_r, nb_c = h // crop, w // crop
        blocks = [(i * crop, j * crop) for i in range(nb_r) for j in range(nb_c)]
        n_val = int(round(val_share * len(blocks))) if val_share > 0 else 0
        if val_share > 0 and len(blocks) >= 2:
            n_val = min(max(n_val, 1), len(blocks) - 1)
        else:
            n_val = 0
        ri = len(kept)
        for b in rng.permutation(len(blocks))[:n_val]:
            r0, c0 = blocks[b]
            blocked[r0:r0 + crop, c0:c0 + crop] = True
            if not nodata[r0:r0 + crop, c0:c0 + crop].any():
                val.append((ri, r0, c0))
        ii = _integral(blocked)
        rows, cols = np.meshgrid(np.arange(0, h - crop + 1, 4), np.arange(0, w - crop + 1, 4),
                                 indexing="ij")
        if not (_count(ii, rows.ravel(), cols.ravel(), crop) == 0).any():
            warn(f"{r.name}: no training crop free of nodata and validation blocks; skipped.")
            val = [v for v in val if v[0] != ri]
            continue
        kept.append(r)
        train_ok.append(ii)
    if not kept:
        raise DemSrError(f"No input DEM has room for a {crop}-px training crop free of nodata. "
                         "Use larger DEMs or a smaller PATCH_SIZE.")
    if val_share > 0 and not val:
        raise DemSrError("No validation block free of nodata could be set aside; use a larger "
                         "VALIDATION share, more DEMs, or a smaller PATCH_SIZE.")
    return PatchSet(kept, crop, train_ok, val)
