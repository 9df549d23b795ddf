"""Void repair's request and result, and what its routes share: the output profiles (all
outputs are written together), the names for the log, the auxiliary DEM's warnings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


from ..monitor import Monitor
from ..nodata.find import (MASK_AUXILIARY, MASK_FILLED, MASK_NODATA)
from ..raster.grid import (Grid)
from ..raster.write import DEFAULT_NODATA, gtiff_profile, output_nodata, scratch_path


MAX_TARGET_PIXELS = 100_000_000


# Streamed repair on the input grid (voidrepair_stream): flow routing over the whole grid is
# what stays in memory (measured: see STREAM_* below and docs/benchmarks.md).
MAX_STREAM_PIXELS = 2_000_000_000   # flow routing indexes cells with int32


METHODS = ("auto", "fill", "delta", "model")


CLASSICAL = ("fill", "delta")


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
    method: str = "auto"                      # auto, fill, delta or model (METHODS)
    auxiliary_path: Optional[str] = None      # a second DEM of the area (any CRS, resolution)
    max_void_size: float = 0.0                # input px; wider voids stay nodata (0 = fill all)
    tile_size: int = 384
    batch_size: int = 2
    in_memory: bool = False                   # hold the grid in memory even on the input grid
    # σ of each filled cell's expected error (metres; METHOD=fill/delta,
    # core/uncertainty/voids.py); written together with OUTPUT and FILLED_MASK, or none
    uncertainty_path: Optional[str] = None


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
    method: str = ""
    from_auxiliary: int = 0   # target pixels filled from the auxiliary DEM
    uncertainty_path: Optional[str] = None
    uncertainty_seconds: float = 0.0   # of `seconds`, spent on UNCERTAINTY


def written(req: VoidRepairRequest) -> str:
    """The outputs a run writes, for the log."""
    if req.uncertainty_path:
        return f"{req.output_path}, {req.mask_path} and {req.uncertainty_path}"
    return f"{req.output_path} and {req.mask_path}"


def scratch_sigma(req: VoidRepairRequest):
    """A temporary σ raster beside UNCERTAINTY (removed on exit), or None without it."""
    from contextlib import nullcontext

    return scratch_path(req.uncertainty_path) if req.uncertainty_path else nullcontext()


METHOD_NAMES = {"fill": "biharmonic first fill", "delta": "delta surface fill",
                "model": "DS-HAT model"}


def output_profiles(req: VoidRepairRequest, src, dst: Grid) -> list:
    """OUTPUT's, FILLED_MASK's and (when asked for) UNCERTAINTY's GeoTIFF profiles on dst,
    in that order: what atomic_outputs writes together."""
    out = [(req.output_path, gtiff_profile(dst, output_nodata(src.nodata))),
           (req.mask_path, gtiff_profile(dst, MASK_NODATA, dtype="uint8"))]
    if req.uncertainty_path:  # σ ≥ 0: a negative nodata, whatever the input's (0 would hide
        out.append((req.uncertainty_path, gtiff_profile(dst, DEFAULT_NODATA)))  # σ = 0)
    return out


def output_names(req: VoidRepairRequest) -> str:
    return "OUTPUT, FILLED_MASK and UNCERTAINTY" if req.uncertainty_path else \
        "OUTPUT and FILLED_MASK"


def auxiliary_warnings(uncovered: int, filled: int, rim_warning: Optional[str],
                        monitor: Monitor) -> None:
    if uncovered:
        monitor.warning(
            f"AUXILIARY does not cover {uncovered} of the {filled} void cells "
            f"({100 * uncovered / max(filled, 1):.3g} %): they were filled by the first "
            f"fill and are marked {MASK_FILLED} in FILLED_MASK ({MASK_AUXILIARY} = from the "
            "auxiliary DEM).")
    if rim_warning:
        monitor.warning(rim_warning)
