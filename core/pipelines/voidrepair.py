"""Void repair and super-resolution onto a target grid with DS-HAT.

1. Target grid: a reference raster's grid (CRS, extent, pixel size), or the
   input's extent at a given pixel size (anchored top-left, as gdalwarp -tr),
   or the input's own grid (pure void repair).
2. Voids are the input's nodata regions that do not touch the raster border
   (nodata connected to the border is outside the DEM's footprint and stays
   nodata). Voids wider than `max_void_size` input pixels may be left as nodata.
3. First fill on the input grid: biharmonic inpainting (core.inpaint), which
   continues slopes across a void.
4. The filled DEM goes onto the target grid with GDAL Lanczos (average when
   the target is coarser); the void classes with nearest neighbour, so a target
   pixel is "filled" when its centre lies in a void; Sentinel-2 bands (any CRS,
   any resolution) are warped bilinearly.
5. Terrain derivatives of the filled target-grid surface and the spectral
   bands are scaled with constants fitted once on this whole raster.
6. DS-HAT runs tile by tile with its halo (edges repeated), so tiles agree.
   On the input's own grid, valid cells are kept exactly and only voids take
   the model's values; on another grid the model's output is used everywhere.

Everything after reading is held in memory on the target grid (under 100 bytes
per target pixel at peak, plus PyTorch); MAX_TARGET_PIXELS guards against runaway
grids, and a run that would need more memory than is available stops before it
starts, saying so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from scipy import ndimage

from ..devices import import_torch, select_device
from ..errors import DemSrError
from ..raster.grid import Grid, output_grid
from ..nodata.inpaint import inpaint
from ..memory import available_bytes, gigabytes
from ..monitor import Monitor
from ..raster.io import (GDAL_ENV, atomic_output, check_output_path, gtiff_profile, open_dem,
                        output_nodata, read_band)
from ..raster.warp import _LOCAL_CRS, resample
from ..terrain import DSHAT_DERIVATIVES, NormaliserSet, compute_derivatives, fit_normaliser
from ..nodata.fill import fill_nearest
from ..nets.bundled import DSHAT_MODEL

BUNDLED_MODEL = DSHAT_MODEL  # one place for bundled-model paths: nets/bundled.py
INTERPOLATION = "gdal-lanczos"  # how the DEM reaches the target grid (checkpoint field)
SPECTRAL_BANDS = 4            # Sentinel-2 bands 1–4 (coastal aerosol, blue, green, red)
SPECTRAL_PREFIX = "s2_b"
MAX_TARGET_PIXELS = 100_000_000
# Peak memory of a run, measured on 1–9 Mpx targets: about 75 bytes per target pixel plus a
# fixed 0.75 GB (PyTorch, model, tiles); rounded up.
BYTES_PER_TARGET_PIXEL, FIXED_BYTES = 100, 800_000_000
SIGMA_RADIUS = 3              # 7×7 window of the relief constant
MIN_TILE = 64                 # smallest network tile side when voids are sparse
# Pixel classes on both grids: data, void to fill, outside the footprint, void left as nodata.
VALID, FILLED, NODATA, LEFT = 0, 1, 2, 3
MASK_NODATA = 255


@dataclass
class VoidRepairRequest:
    input_path: str
    output_path: str
    mask_path: str
    band: int = 1
    target_grid_path: Optional[str] = None    # reference raster whose grid is used
    target_resolution: Optional[float] = None  # pixel size in the input's CRS units
    spectral_path: Optional[str] = None       # raster whose bands 1–4 are Sentinel-2 B1–B4
    model_path: Optional[str] = None          # None = bundled default
    device: str = "auto"
    max_void_size: float = 0.0                # input px; wider voids stay nodata (0 = fill all)
    tile_size: int = 384
    batch_size: int = 2


@dataclass
class VoidRepairResult:
    output_path: str
    mask_path: str
    grid: Grid
    voids: int            # void groups found on the input grid
    filled_pixels: int    # target pixels filled
    left_pixels: int      # target pixels of voids left as nodata (max_void_size)
    device: str
    seconds: float


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


# --- grids -------------------------------------------------------------------------------

def same_grid(a: Grid, b: Grid) -> bool:
    ta, tb = a.transform, b.transform
    tol = 1e-9 * max(abs(ta.a), abs(ta.e))
    return ((a.width, a.height) == (b.width, b.height)
            and all(abs(x - y) <= tol * 1e3 for x, y in zip(ta[:6], tb[:6]))
            and _same_crs(a, b))


def _same_crs(a: Grid, b: Grid) -> bool:
    return a.crs is None or b.crs is None or a.crs == b.crs


def target_grid(src: Grid, target_grid_path: Optional[str] = None,
                target_resolution: Optional[float] = None) -> Grid:
    """The output grid: a reference raster's, the input's at a pixel size, or the input's."""
    if target_grid_path:
        return open_dem(target_grid_path, 1).grid
    if target_resolution is None or target_resolution <= 0:
        return src
    resx, resy = src.res
    if max(abs(target_resolution - resx) / resx, abs(target_resolution - resy) / resy) <= 1e-9:
        return src
    if max(resx, resy) / target_resolution > 1.0:
        return output_grid(src, target_resolution=target_resolution)
    from affine import Affine  # coarser than the input: same anchoring as output_grid

    width = max(1, int(round(src.width * resx / target_resolution)))
    height = max(1, int(round(src.height * resy / target_resolution)))
    return Grid(Affine(target_resolution, 0, src.transform.c, 0, -target_resolution,
                       src.transform.f), width, height, src.crs)


def warp(data: np.ndarray, src: Grid, dst: Grid, method: str, nodata: float = np.nan,
         dtype=np.float32) -> np.ndarray:
    """Warp one band onto dst (any CRS); cells beyond the source or on nodata get `nodata`."""
    out = np.full((dst.height, dst.width), nodata, dtype)
    with rasterio.Env(**GDAL_ENV):
        reproject(np.ascontiguousarray(data, dtype=dtype), out,
                  src_transform=src.transform, src_crs=src.crs or _LOCAL_CRS,
                  dst_transform=dst.transform,
                  dst_crs=dst.crs if (dst.crs is not None and src.crs is not None) else
                  (src.crs or _LOCAL_CRS),
                  resampling=getattr(Resampling, method), src_nodata=nodata,
                  dst_nodata=nodata, tolerance=0.0)
    return out


# --- voids -------------------------------------------------------------------------------

def classify_voids(dem: np.ndarray, max_void_size: float = 0.0) -> tuple[np.ndarray, int, int]:
    """(classes, voids to fill, voids left): NaN groups touching the border are NODATA,
    the others FILLED, or LEFT when wider than max_void_size pixels (2 × the largest
    distance of a void cell from valid data)."""
    nan = ~np.isfinite(dem)
    classes = np.where(nan, NODATA, VALID).astype(np.uint8)
    if not nan.any():
        return classes, 0, 0
    labels, n = ndimage.label(nan)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inside = nan & ~np.isin(labels, border)
    left = 0
    if max_void_size and max_void_size > 0 and inside.any():
        dist = ndimage.distance_transform_edt(inside)
        widest = ndimage.maximum(dist, labels, index=np.arange(1, n + 1))
        too_big = np.flatnonzero(2 * np.asarray(widest) > max_void_size) + 1
        too_big = too_big[~np.isin(too_big, border)]
        left = int(too_big.size)
        big = np.isin(labels, too_big)
        classes[big] = LEFT
        inside &= ~big
    classes[inside] = FILLED
    fill_count = int(len(np.setdiff1d(np.unique(labels[inside]), [0])))
    return classes, fill_count, left


def _finer(src: Grid, dst: Grid) -> bool:
    """Whether the target pixels are not larger than the input's (in the target's units)."""
    if _same_crs(src, dst):
        return dst.res[0] <= src.res[0] * (1 + 1e-9)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(src.crs, dst.crs, *src.bounds)
    return dst.res[0] <= (right - left) / src.width * (1 + 1e-9)


def relief_sigma(dem: np.ndarray, valid: np.ndarray) -> float:
    """Per-raster relief constant: mean 7×7 absolute deviation from the local mean over
    valid cells (the elevation unit of the network; fitted once per raster, never per tile)."""
    k = 2 * SIGMA_RADIUS + 1
    z = dem.astype(np.float64)
    mean = ndimage.uniform_filter(z, k, mode="nearest")
    dev = ndimage.uniform_filter(np.abs(z - mean), k, mode="nearest")
    vals = dev[valid & np.isfinite(dev)]
    return max(float(vals.mean()) if vals.size else 1.0, 1e-3)


# --- network inputs ------------------------------------------------------------------------

def prepare(dem: np.ndarray, src: Grid, dst: Grid, classes: np.ndarray,
            spectral: Optional[tuple[np.ndarray, Grid]] = None,
            monitor: Optional[Monitor] = None) -> Prepared:
    """First fill, grid change, derivatives and scaling: the same for training and use."""
    monitor = monitor or Monitor()
    filled = inpaint(dem, classes == FILLED, monitor.sub(0.0, 0.3))
    monitor.check()
    same = same_grid(src, dst)
    if same:
        dem_t, cls_t = filled, classes
    else:
        method = "lanczos" if _finer(src, dst) else "average"
        base = fill_nearest(filled)
        pad = 4  # repeat the edge cells beyond the raster, as the super-resolve engine does
        base = np.pad(base, pad, mode="edge")
        t = src.transform * src.transform.translation(-pad, -pad)
        if _same_crs(src, dst) and method == "lanczos":
            dem_t = resample(base, t, (dst.height, dst.width), dst.transform, method, src.crs)
        else:
            dem_t = warp(base, Grid(t, base.shape[1], base.shape[0], src.crs), dst, method)
        cls_t = warp(classes, src, dst, "nearest", nodata=NODATA, dtype=np.uint8)
    monitor.progress(0.45)
    monitor.check()
    valid_t = cls_t < NODATA
    if not valid_t.any():
        raise DemSrError("The target grid does not overlap the DEM's data: every target pixel "
                         "would be nodata. Check TARGET_GRID (its extent and CRS).")
    surface = np.where(valid_t, dem_t, np.nan).astype(np.float32)
    der = compute_derivatives(surface, dst, DSHAT_DERIVATIVES, monitor=monitor.sub(0.45, 0.85))
    aux = [v for v in NormaliserSet.fit(der).apply(der).values()]
    del der
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
    sigma = relief_sigma(dem_in, cls_t == VALID) if (cls_t == VALID).any() else 1.0
    voids = ndimage.distance_transform_edt(cls_t == FILLED).astype(np.float32)
    monitor.progress(1.0)
    return Prepared(dem=dem_in.astype(np.float32), classes=cls_t, voids=voids, aux=aux_arr,
                    sigma=sigma, same_grid=same, original=dem if same else None)


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


# --- the model -----------------------------------------------------------------------------

def load_model(model_path: Optional[str]):
    """The DS-HAT checkpoint, or a DemSrError saying why it cannot repair voids."""
    from ..nets import checkpoint

    path = model_path or BUNDLED_MODEL
    if not model_path and not os.path.isfile(path):
        raise DemSrError(f"The bundled DS-HAT model is missing ({path}). Reinstall the plugin, "
                         "or train one with Train DEM SR (ARCHITECTURE=dshat) and give it as "
                         "MODEL.")
    ckpt = checkpoint.load(path)
    if ckpt.architecture != "dshat":
        raise DemSrError(
            f"'{os.path.basename(path)}' is a '{ckpt.architecture}' super-resolution model; void "
            "repair needs a DS-HAT model. Train one with Train DEM SR (ARCHITECTURE=dshat), or "
            "leave MODEL empty for the bundled one.")
    return ckpt, path


def spectral_bands_of(ckpt) -> int:
    return sum(1 for c in ckpt.hparams.get("aux_channels", []) if c.startswith(SPECTRAL_PREFIX))


def check_channels(ckpt, path: str, has_spectral: bool) -> int:
    """Number of spectral bands the model needs; errors on a channel-set mismatch."""
    n = spectral_bands_of(ckpt)
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


def _window(arr: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """arr[..., r0:r0+h, c0:c0+w] with edge cells repeated beyond the array."""
    H, W = arr.shape[-2:]
    a0, b0, a1, b1 = max(r0, 0), max(c0, 0), min(r0 + h, H), min(c0 + w, W)
    inner = arr[..., a0:a1, b0:b1]
    pads = [(0, 0)] * (arr.ndim - 2) + [(a0 - r0, r0 + h - a1), (b0 - c0, c0 + w - b1)]
    return np.pad(inner, pads, mode="edge") if any(p != (0, 0) for p in pads) else inner


def _tiles(shape: tuple[int, int], size: int) -> list[tuple[int, int, int, int]]:
    H, W = shape
    return [(r, c, min(size, H - r), min(size, W - c))
            for r in range(0, H, size) for c in range(0, W, size)]


def void_tiles(voids: np.ndarray, tile_size: int, halo: int) -> list[tuple[int, int, int, int]]:
    """The tiles holding voids, at the size (tile_size, /2, /4, … ≥ MIN_TILE) that runs the
    network on the fewest pixels, halo included: sparse voids get small tiles."""
    best = None
    size = tile_size
    has = voids > 0
    h, w = has.shape
    while True:
        nr, nc = -(-h // size), -(-w // size)
        padded = np.zeros((nr * size, nc * size), bool)
        padded[:h, :w] = has
        hit = padded.reshape(nr, size, nc, size).any(axis=(1, 3))
        cost = int(hit.sum()) * (size + 2 * halo) ** 2
        if best is None or cost < best[0]:
            best = (cost, size, hit)
        if size // 2 < MIN_TILE:
            break
        size //= 2
    _, size, hit = best
    return [t for t in _tiles(voids.shape, size) if hit[t[0] // size, t[1] // size]]


def run_model(model, prep: Prepared, device: str, tile_size: int, batch_size: int,
              monitor: Monitor) -> np.ndarray:
    """The model's DEM on the whole target grid, tile by tile with halo."""
    from ..nets.checkpoint import channels_last

    torch = import_torch()
    halo = int(model.halo)
    H, W = prep.dem.shape
    out = np.empty((H, W), np.float32)
    mask = prep.voids
    if prep.same_grid:  # valid cells are kept as they are: only tiles holding voids need the net
        out[:] = prep.dem
        tiles = void_tiles(mask, tile_size, halo)
    else:
        tiles = _tiles((H, W), tile_size)
    sigma = torch.full((1, 1, 1, 1), float(prep.sigma))
    for i in range(0, len(tiles), max(1, batch_size)):
        monitor.check()
        batch = tiles[i:i + batch_size]
        hs = max(t[2] for t in batch) + 2 * halo
        ws = max(t[3] for t in batch) + 2 * halo
        win = lambda a, t: _window(a, t[0] - halo, t[1] - halo, hs, ws)  # noqa: E731
        dem = np.stack([win(prep.dem, t) for t in batch])[:, None]
        msk = np.stack([win(mask, t) for t in batch])[:, None]
        aux = np.stack([win(prep.aux, t) for t in batch])
        t = lambda a: channels_last(torch.from_numpy(np.ascontiguousarray(a)).to(device))  # noqa: E731
        with torch.inference_mode():
            y = model(t(dem), t(msk), t(aux),
                      sigma.expand(len(batch), 1, 1, 1).to(device)).float().cpu().numpy()
        for k, (r, c, h, w) in enumerate(batch):
            out[r:r + h, c:c + w] = y[k, 0, halo:halo + h, halo:halo + w]
        monitor.progress(min(1.0, (i + len(batch)) / len(tiles)))
    return out


def assemble(pred: np.ndarray, prep: Prepared) -> np.ndarray:
    """Final DEM: NaN outside the footprint; on the input grid valid cells are kept."""
    out = np.where(prep.classes >= NODATA, np.nan, pred).astype(np.float32)
    if prep.same_grid:
        keep = prep.classes == VALID
        out[keep] = prep.original[keep]
    return out


def voidrepair(req: VoidRepairRequest, monitor: Optional[Monitor] = None) -> VoidRepairResult:
    monitor = monitor or Monitor()
    started = time.perf_counter()
    src = open_dem(req.input_path, req.band)
    check_output_path(req.output_path)
    check_output_path(req.mask_path)
    if os.path.abspath(req.output_path) == os.path.abspath(req.mask_path):
        raise DemSrError("OUTPUT and FILLED_MASK are the same file; give two different files.")
    if req.target_grid_path and req.target_resolution:
        monitor.warning("Both TARGET_GRID and TARGET_RESOLUTION are set: TARGET_GRID wins.")
    dst = target_grid(src.grid, req.target_grid_path, req.target_resolution)
    if dst.width * dst.height > MAX_TARGET_PIXELS:
        raise DemSrError(
            f"The target grid has {dst.width}×{dst.height} pixels, more than the "
            f"{MAX_TARGET_PIXELS // 1_000_000} million that void repair holds in memory. Split the "
            "DEM into parts (Raster ▸ Extraction ▸ Clip) or choose a coarser target.")
    need = BYTES_PER_TARGET_PIXEL * dst.width * dst.height + FIXED_BYTES
    free = available_bytes()
    if free is not None and need > free:
        raise DemSrError(
            f"Void repair onto a {dst.width}×{dst.height} grid holds it in memory and needs "
            f"about {gigabytes(need)}; {gigabytes(free)} is available. Close other programs, "
            "split the DEM into parts (Raster ▸ Extraction ▸ Clip), or choose a coarser target.")
    ckpt, model_path = load_model(req.model_path)
    n_spec = check_channels(ckpt, model_path, bool(req.spectral_path))
    spectral = read_spectral(req.spectral_path, n_spec) if n_spec else None
    choice = select_device(req.device)
    channels = ", ".join(ckpt.hparams["aux_channels"])
    monitor.info(f"DS-HAT model {os.path.basename(model_path)} ({channels}); device: "
                 f"{choice.description}." + (f" Note: {choice.note}." if choice.note else ""))
    with rasterio.Env(**GDAL_ENV), rasterio.open(src.path) as ds:
        dem = read_band(ds, src.band)
    if not np.isfinite(dem).any():
        raise DemSrError(f"'{os.path.basename(src.path)}' band {src.band} has no valid cells: "
                         "every cell is nodata. Check the band and the layer's nodata value.")
    monitor.check()
    classes, n_fill, n_left = classify_voids(dem, req.max_void_size)
    monitor.info(f"Input {src.grid.width}×{src.grid.height} px: {n_fill} void(s), "
                 f"{int((classes == FILLED).sum())} cells to fill"
                 + (f"; {n_left} void(s) wider than {req.max_void_size:g} px left as nodata"
                    if n_left else "")
                 + f". Target grid {dst.width}×{dst.height} px of "
                 f"{dst.res[0]:.6g}×{dst.res[1]:.6g}.")
    prep = prepare(dem, src.grid, dst, classes, spectral, monitor.sub(0.0, 0.4))
    del dem
    model = ckpt.build_for_inference(choice.device)
    pred = run_model(model, prep, choice.device, req.tile_size, req.batch_size,
                     monitor.sub(0.4, 0.95))
    out = assemble(pred, prep)
    left_t = int((prep.classes == LEFT).sum())
    mask = np.where(prep.classes >= NODATA, MASK_NODATA, prep.classes == FILLED).astype(np.uint8)
    nodata = output_nodata(src.nodata)
    monitor.check()
    with atomic_output(req.output_path, gtiff_profile(dst, nodata)) as writer, \
            atomic_output(req.mask_path, gtiff_profile(dst, MASK_NODATA, dtype="uint8")) as mw:
        writer.write(out, 0, 0)
        mw.ds.write(mask, 1)
        monitor.check()
    filled = int((prep.classes == FILLED).sum())
    seconds = time.perf_counter() - started
    monitor.progress(1.0)
    monitor.info(f"Wrote {req.output_path} and {req.mask_path} ({filled} filled pixels) in "
                 f"{seconds:.1f} s.")
    return VoidRepairResult(req.output_path, req.mask_path, dst, n_fill, filled, left_t,
                            choice.description, seconds)
