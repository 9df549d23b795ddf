"""Training and validation patches from HR DEMs.

Each raster is cut into square blocks; a share of them (chosen with the
seed) is the validation set, and no training crop, context included, may
touch a validation block or a nodata cell (checked with integral images).
Training crops are random and randomly flipped/rotated; validation crops
are the validation blocks themselves, fixed.

Scale augmentation (`coarser`): each DEM also gives block-mean copies ×2, ×3,
… — the same landscape as a coarser DEM would show it — as extra training
rasters. Terrain is not scale-free, so they add relief the inputs do not
have at their own resolution (a 20 m DEM copy at 40 m and 60 m). A copy's
cell is blocked when any of its source cells is nodata or in a validation
block, so validation stays unseen; copies have no validation blocks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio

from ..errors import DemSrError
from ..raster.io import open_dem, read_band


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
    """Summed-area table of `mask`; int32 (half the memory) while the count fits in it."""
    dtype = np.int32 if mask.size < 2 ** 31 else np.int64
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype)
    np.cumsum(mask, axis=0, dtype=dtype, out=out[1:, 1:])
    np.cumsum(out[1:, 1:], axis=1, out=out[1:, 1:])
    return out


def window_count(ii: np.ndarray, r: np.ndarray, c: np.ndarray, size: int) -> np.ndarray:
    """How many marked cells the size×size windows at rows r, columns c hold, from the
    integral image `ii` of the mask (the training area test of every trainer)."""
    return ii[r + size, c + size] - ii[r, c + size] - ii[r + size, c] + ii[r, c]


@dataclass
class PatchSet:
    rasters: list[Raster]
    crop: int                  # HR pixels per crop side, context included
    train_ok: list[np.ndarray]  # per raster: integral image of cells a training crop may not touch
    val_crops: list[tuple[int, int, int]]  # (raster index, row, col)
    copies: int = 0            # the last `copies` rasters are coarser copies (training only)

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
                ok = np.flatnonzero(window_count(self.train_ok[ri], rr, cc, self.crop) == 0)
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


def _trainable(blocked: np.ndarray, crop: int) -> tuple[np.ndarray, bool]:
    """Integral image of `blocked`, and whether some crop (on a 4-px lattice) avoids it."""
    h, w = blocked.shape
    ii = _integral(blocked)
    if h < crop or w < crop:
        return ii, False
    rows, cols = np.meshgrid(np.arange(0, h - crop + 1, 4), np.arange(0, w - crop + 1, 4),
                             indexing="ij")
    return ii, bool((window_count(ii, rows.ravel(), cols.ravel(), crop) == 0).any())


def coarser_copy(r: Raster, blocked: np.ndarray, f: int) -> tuple[Raster, np.ndarray]:
    """The raster block-averaged ×f (NaN where a source cell is NaN) and its blocked cells."""
    h, w = (r.data.shape[0] // f) * f, (r.data.shape[1] // f) * f
    data = r.data[:h, :w].astype(np.float64).reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    blk = blocked[:h, :w].reshape(h // f, f, w // f, f).any(axis=(1, 3)) | np.isnan(data)
    res = (r.res[0] * f, r.res[1] * f)
    return Raster(f"{r.name} (block mean ×{f})", data.astype(np.float32), res, r.geographic,
                  r.lat), blk


def make_patch_set(rasters: list[Raster], crop: int, val_share: float, seed: int,
                   warn=lambda _m: None, coarser: tuple[int, ...] = ()) -> PatchSet:
    """Split every raster into validation blocks and training area; add the coarser copies."""
    rng = np.random.default_rng(seed)
    kept, train_ok, val, copies = [], [], [], []
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
        ii, ok = _trainable(blocked, crop)
        if not ok:
            warn(f"{r.name}: no training crop free of nodata and validation blocks; skipped.")
            val = [v for v in val if v[0] != ri]
            continue
        kept.append(r)
        train_ok.append(ii)
        for f in coarser:
            copy, blk = coarser_copy(r, blocked, int(f))
            cii, cok = _trainable(blk, crop)
            if cok:
                copies.append((copy, cii))
    if not kept:
        raise DemSrError(f"No input DEM has room for a {crop}-px training crop free of nodata. "
                         "Use larger DEMs or a smaller PATCH_SIZE.")
    if val_share > 0 and not val:
        raise DemSrError("No validation block free of nodata could be set aside; use a larger "
                         "VALIDATION share, more DEMs, or a smaller PATCH_SIZE.")
    kept += [c for c, _ in copies]
    train_ok += [ii for _, ii in copies]
    return PatchSet(kept, crop, train_ok, val, len(copies))
