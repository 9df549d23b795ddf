"""Will the outputs fit? Uncompressed sizes (an upper bound for our GeoTIFFs), free space
per file system, and a ceiling on grids nobody means, checked before heavy work."""
from __future__ import annotations

import math
import os
import shutil
from typing import Iterable, Optional, Sequence

import numpy as np

from ..errors import DemSrError
from .grid import Grid

MAX_OUTPUT_PIXELS = 40_000_000_000  # 160 GB of Float32: beyond, split the DEM


def raster_bytes(width: int, height: int, count: int = 1, dtype: str = "float32") -> int:
    """Uncompressed size: an upper bound for our compressed GeoTIFFs (plus headers)."""
    return int(width) * int(height) * int(count) * np.dtype(dtype).itemsize


def profile_bytes(profile: dict) -> int:
    return raster_bytes(profile["width"], profile["height"], profile.get("count", 1),
                        profile.get("dtype", "float32"))


def free_bytes(path: str) -> Optional[int]:
    """Free space on the file system that holds `path` (a file to be or a folder)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def megabytes(n: float) -> str:
    return f"{math.ceil(n / 1e6):,} MB"


def disk_full(needed: float, free: float, folder: str) -> str:
    return (f"disk full: {megabytes(needed)} needed, {math.floor(free / 1e6):,} MB free at "
            f"{folder}")


def check_space(needs: Iterable[tuple[str, int]], what: str = "the output") -> None:
    """Refuse work whose files cannot fit: `needs` = (file path, bytes), summed per file
    system (a margin covers headers and compression that does not pay)."""
    groups: dict = {}
    for path, nbytes in needs:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            key = os.stat(folder).st_dev
        except OSError:
            continue
        total, _ = groups.get(key, (0, folder))
        groups[key] = (total + nbytes, folder)
    for total, folder in groups.values():
        free = free_bytes(folder)
        need = int(total * 1.01) + 1_000_000
        if free is not None and need > free:
            raise DemSrError(
                f"{disk_full(need, free, folder)} (uncompressed size of {what}, an upper bound; "
                "compression usually makes the file smaller, but not always). Free some space, "
                "or write to another disk.")


def check_output_size(grid: Grid, what: str = "The output") -> None:
    """Refuse a grid nobody means: more pixels than any run here can finish."""
    pixels = grid.width * grid.height
    if pixels > MAX_OUTPUT_PIXELS:
        raise DemSrError(
            f"{what} would be {grid.width:,}×{grid.height:,} pixels "
            f"({raster_bytes(grid.width, grid.height) / 1e9:,.0f} GB as Float32), more than "
            f"the {MAX_OUTPUT_PIXELS / 1e9:.0f} billion pixels this plugin writes in one run. "
            "Choose a smaller SCALE or a coarser target, or split the DEM into parts "
            "(Raster ▸ Extraction ▸ Clip).")


def require_room(outputs: Sequence[tuple[str, dict]], what: str = "the output") -> None:
    """Before heavy work: every output's grid is sane and all of them fit on disk."""
    for path, profile in outputs:
        check_output_size(Grid(profile["transform"], profile["width"], profile["height"],
                               profile.get("crs")), f"'{os.path.basename(path)}'")
    check_space([(path, profile_bytes(profile)) for path, profile in outputs], what)
