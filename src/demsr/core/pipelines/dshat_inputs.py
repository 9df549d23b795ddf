"""DS-HAT's inputs on the target grid, the same for training and for use.

The input DEM's voids get a first fill (biharmonic inpainting, which
continues slopes across a void), the filled DEM goes onto the target grid
with GDAL Lanczos (average when the target is coarser), the void classes
with nearest neighbour (a target pixel is "filled" when its centre lies in a
void), and Sentinel-2 bands (any CRS, any resolution) bilinearly. Terrain
derivatives of the target-grid surface and the spectral bands are scaled with
constants fitted once on the whole raster, never per tile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import rasterio
from scipy import ndimage

from ..errors import DemSrError
from ..monitor import Monitor
from ..nets import bundled
from ..nets.local_norm import relief_constant
from ..nodata.fill import fill_nearest
from ..nodata.find import FILLED, NODATA, VALID
from ..nodata.auxiliary import delta_inpaint
from ..nodata.inpaint import inpaint
from ..raster.grid import Grid, is_finer, same_crs, same_grid
from ..raster.io import GDAL_ENV, open_dem, read_band
from ..raster.warp import resample, warp
from ..terrain import (DERIVATIVES, DSHAT_DERIVATIVES, NormaliserSet, compute_derivatives,
                       fit_normaliser)

SPECTRAL_BANDS = 4            # Sentinel-2 bands 1–4 (coastal aerosol, blue, green, red)
SPECTRAL_PREFIX = "s2_b"
SIGMA_RADIUS = 3              # 7×7 window of the relief constant
AUXILIARY_CHANNEL = "auxiliary"   # the second DEM (AUXILIARY) in the support stream
# The channels of a model trained with auxiliary DEMs: surface derivatives only (no flow
# routing: the auxiliary DEM says more about a void's interior than drainage does).
AUXILIARY_MODEL_CHANNELS = ("slope", "plan_curvature", "profile_curvature", AUXILIARY_CHANNEL)
# Why none is bundled (scripts/evaluate_voids.py --auxiliary / --real-pairs --with-model,
# scripts/train_dshat.py --auxiliary; docs/quality.md): RMSE in voids against delta fill.
NO_BUNDLED_AUX_MODEL = ("0.93× on the validation DEMs with the synthetic auxiliary, 1.19× on "
                        "the OGGM 46 m / Swiss 200 m pair")


@dataclass
class Prepared:
    """Network inputs on the target grid."""

    dem: np.ndarray        # first-filled, resampled DEM, NaN-free (nearest beyond the footprint)
    classes: np.ndarray    # uint8 VALID / FILLED / NODATA / LEFT
    voids: np.ndarray      # distance (target px) of FILLED pixels to the nearest other pixel
    aux: np.ndarray        # (C, H, W) float32 in [0, 1]
    sigma: float           # relief constant (m)
    same_grid: bool
    original: Optional[np.ndarray]  # input values when same_grid (kept on valid cells)
    from_auxiliary: Optional[np.ndarray] = None  # target pixels first-filled from AUXILIARY


def prepare(dem: np.ndarray, src: Grid, dst: Grid, classes: np.ndarray,
            spectral: Optional[tuple[np.ndarray, Grid]] = None,
            monitor: Optional[Monitor] = None, auxiliary: Optional[np.ndarray] = None,
            channels: Sequence[str] = DSHAT_DERIVATIVES) -> Prepared:
    """First fill, grid change and the support-stream `channels` (terrain derivatives,
    AUXILIARY_CHANNEL, Sentinel-2 bands, in that order): the same for training and use.
    With `auxiliary` (the second DEM on src's grid, NaN = no data) the first fill is the
    delta surface fill, so a network starts from what METHOD=delta gives."""
    monitor = monitor or Monitor()
    voids = classes == FILLED
    from_aux = None
    if auxiliary is not None:
        filled, from_aux = delta_inpaint(dem, voids, auxiliary, monitor.sub(0.0, 0.3))
    else:
        filled = inpaint(dem, voids, monitor.sub(0.0, 0.3))
    monitor.check()
    same = same_grid(src, dst)
    dem_t, cls_t = onto_grid(filled, classes, src, dst)
    monitor.progress(0.45)
    monitor.check()
    valid_t = cls_t < NODATA
    if not valid_t.any():
        raise DemSrError("The target grid does not overlap the DEM's data: every target pixel "
                         "would be nodata. Check TARGET_GRID (its extent and CRS).")
    surface = np.where(valid_t, dem_t, np.nan).astype(np.float32)
    terrain = [c for c in channels if c in DERIVATIVES]
    der = compute_derivatives(surface, dst, terrain, monitor=monitor.sub(0.45, 0.85))
    aux = list(NormaliserSet.fit(der).apply(der).values()) if terrain else []
    del der
    if AUXILIARY_CHANNEL in channels:
        if auxiliary is None:
            raise DemSrError("This model reads an auxiliary DEM: give AUXILIARY.")
        aux.append(_auxiliary_channel(filled, auxiliary, src, dst, valid_t))
    if spectral is not None:
        bands, sgrid = spectral
        for b in range(bands.shape[0]):
            monitor.check()
            band_t = warp(bands[b], sgrid, dst, "bilinear")
            ok = np.isfinite(band_t) & valid_t
            if not ok.any():
                raise DemSrError("The SPECTRAL raster does not overlap the DEM on the target "
                                 "grid. Give Sentinel-2 bands that cover the DEM.")
            norm = fit_normaliser(band_t[ok], "minmax", percentile=1.0)
            band_t = fill_nearest(np.where(ok, band_t, np.nan))
            aux.append(norm(band_t))
    aux_arr = np.stack(aux).astype(np.float32, copy=False)
    del aux
    np.nan_to_num(aux_arr, copy=False, nan=0.0)
    dem_in = fill_nearest(np.where(valid_t, dem_t, np.nan))
    sigma = relief_constant(dem_in, cls_t == VALID, SIGMA_RADIUS) if (cls_t == VALID).any() else 1.0
    voids = ndimage.distance_transform_edt(cls_t == FILLED).astype(np.float32)
    if from_aux is not None and not same:
        from_aux = warp(from_aux.astype(np.uint8), src, dst, "nearest", nodata=0,
                        dtype=np.uint8) > 0
    monitor.progress(1.0)
    return Prepared(dem=dem_in.astype(np.float32), classes=cls_t, voids=voids, aux=aux_arr,
                    sigma=sigma, same_grid=same, original=dem if same else None,
                    from_auxiliary=from_aux)


def _auxiliary_channel(filled: np.ndarray, auxiliary: np.ndarray, src: Grid, dst: Grid,
                       valid_t: np.ndarray) -> np.ndarray:
    """The support stream's view of the auxiliary DEM: first-filled DEM − auxiliary on the
    target grid (outside voids the detail the auxiliary misses and its error, inside them
    the offset the delta fill carried across), scaled to [0, 1] by constants of the whole
    raster (as the spectral bands)."""
    d = (filled - auxiliary).astype(np.float32)
    ok = np.isfinite(d)
    if not ok.any():
        raise DemSrError("AUXILIARY has no data where the DEM has: it cannot guide the model. "
                         "Give a DEM that covers the voids and their surroundings.")
    d_t = surface_onto_grid(fill_nearest(d), src, dst)
    norm = fit_normaliser(d_t[valid_t], "minmax", percentile=1.0)
    return norm(d_t)


def onto_grid(filled: np.ndarray, classes: np.ndarray, src: Grid, dst: Grid
              ) -> tuple[np.ndarray, np.ndarray]:
    """A void-free DEM and its void classes onto dst (surface_onto_grid); classes by
    nearest neighbour (a target pixel is "filled" when its centre lies in a void). Values
    beyond the footprint are the nearest valid ones (mask them with the classes)."""
    if same_grid(src, dst):
        return filled, classes
    return (surface_onto_grid(filled, src, dst),
            warp(classes, src, dst, "nearest", nodata=NODATA, dtype=np.uint8))


def surface_onto_grid(filled: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """A continuous surface onto dst: Lanczos when dst is finer (edge cells repeated beyond
    the raster, as the super-resolve engine does), area average when coarser."""
    if same_grid(src, dst):
        return filled
    method = "lanczos" if is_finer(src, dst) else "average"
    base = fill_nearest(filled)
    pad = 4
    base = np.pad(base, pad, mode="edge")
    t = src.transform * src.transform.translation(-pad, -pad)
    if same_crs(src, dst) and method == "lanczos":
        return resample(base, t, (dst.height, dst.width), dst.transform, method, src.crs)
    return warp(base, Grid(t, base.shape[1], base.shape[0], src.crs), dst, method)


def read_spectral(path: str, bands: int) -> tuple[np.ndarray, Grid]:
    """The first `bands` bands of a raster (NaN = nodata) and its grid."""
    info = open_dem(path, 1)
    if info.band_count < bands:
        raise DemSrError(
            f"The SPECTRAL raster '{os.path.basename(path)}' has {info.band_count} band(s); the "
            f"model needs Sentinel-2 bands 1–{bands} as the raster's first {bands} bands. Stack "
            "them into one raster (Raster ▸ Miscellaneous ▸ Build Virtual Raster, 'separate').")
    with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
        data = np.stack([read_band(ds, b + 1) for b in range(bands)])
    return data, info.grid


def model_channels(auxiliary: bool, spectral_bands: int) -> list[str]:
    """The support-stream channels of a model trained with or without auxiliary DEMs and
    with `spectral_bands` Sentinel-2 bands: what training builds and use checks."""
    terrain = AUXILIARY_MODEL_CHANNELS if auxiliary else DSHAT_DERIVATIVES
    return [*terrain, *(f"{SPECTRAL_PREFIX}{i + 1}" for i in range(spectral_bands))]


def uses_auxiliary(ckpt) -> bool:
    return AUXILIARY_CHANNEL in ckpt.hparams.get("aux_channels", [])


def load_model(model_path: Optional[str], auxiliary: bool = False, device: str = "auto"):
    """The DS-HAT checkpoint (MODEL, or the bundled terrain-only one), or a DemSrError saying
    why it cannot repair voids. When ONNX Runtime will run it on `device`, NAME.onnx alone is
    read: PyTorch is never imported."""
    from ..devices import select_device
    from ..nets import checkpoint

    if auxiliary and not model_path:
        raise DemSrError(
            "No bundled DS-HAT model reads an auxiliary DEM: the ones trained here beat delta "
            f"surface fill on synthetic second products but not on a real pair "
            f"({NO_BUNDLED_AUX_MODEL}; docs/quality.md). Use METHOD=delta (or auto) to fill "
            "the voids from AUXILIARY, or train a model with Train DEM SR (ARCHITECTURE=dshat "
            "with AUXILIARY or SYNTHETIC_AUXILIARY) and give it as MODEL.")
    path = model_path or bundled.DSHAT_MODEL
    if not model_path and not os.path.isfile(path):
        raise DemSrError(f"The bundled DS-HAT model is missing ({path}). Reinstall the plugin, "
                         "or train one with Train DEM SR (ARCHITECTURE=dshat) and give it as "
                         "MODEL.")
    ckpt = checkpoint.load(path, prefer_onnx=select_device(device).backend == "onnx")
    if ckpt.architecture != "dshat":
        raise DemSrError(
            f"'{os.path.basename(path)}' is a '{ckpt.architecture}' super-resolution model; void "
            "repair needs a DS-HAT model. Train one with Train DEM SR (ARCHITECTURE=dshat), or "
            "leave MODEL empty for the bundled one.")
    return ckpt, path


def spectral_bands_of(ckpt) -> int:
    return sum(1 for c in ckpt.hparams.get("aux_channels", []) if c.startswith(SPECTRAL_PREFIX))


def check_auxiliary(ckpt, path: str, has_aux: bool) -> None:
    """A model reads an auxiliary DEM exactly when it was trained with one."""
    name = os.path.basename(path)
    if has_aux and not uses_auxiliary(ckpt):
        raise DemSrError(
            f"Model '{name}' was trained without an auxiliary DEM and cannot use AUXILIARY. "
            "Use METHOD=delta or auto (or leave MODEL empty) to fill the voids from AUXILIARY, "
            "or clear AUXILIARY to run this model.")
    if uses_auxiliary(ckpt) and not has_aux:
        raise DemSrError(
            f"Model '{name}' was trained with an auxiliary DEM in its support stream and cannot "
            "run without one. Give AUXILIARY (another DEM of the area, any CRS and "
            "resolution), or use a model trained without it (leave MODEL empty).")


def check_channels(ckpt, path: str, has_spectral: bool) -> int:
    """Number of spectral bands the model needs; errors on a channel-set mismatch, and on
    channels this pipeline does not make (the network would read the wrong inputs)."""
    channels = list(ckpt.hparams.get("aux_channels", []))
    n = spectral_bands_of(ckpt)
    made = model_channels(uses_auxiliary(ckpt), n)
    if channels != made:
        raise DemSrError(
            f"Model '{os.path.basename(path)}' reads the channels {', '.join(channels)}; this "
            f"version makes {', '.join(made)} in that order. Use a model trained with this "
            "version (Train DEM SR, ARCHITECTURE=dshat), or leave MODEL empty for the bundled "
            "one.")
    name = os.path.basename(path)
    if n and not has_spectral:
        raise DemSrError(
            f"Model '{name}' was trained with Sentinel-2 bands 1–{n} in its support stream and "
            f"cannot run without them. Give SPECTRAL (a raster whose first {n} bands are "
            "Sentinel-2 B1–B4, any CRS and resolution), or use a terrain-only model (leave MODEL "
            "empty for the bundled one).")
    if has_spectral and not n:
        raise DemSrError(
            f"Model '{name}' uses terrain channels only and cannot use spectral bands. Clear "
            "SPECTRAL, or give a model trained with them (Train DEM SR, ARCHITECTURE=dshat with "
            "a spectral raster).")
    return n
