"""Void repair/SR: fill a DEM's voids, on its own grid or onto a target grid.

The target grid is a reference raster's grid, the input's extent at a given pixel size
(anchored top-left, as gdalwarp -tr), or the input's own grid. Voids are the input's nodata
regions that do not touch the raster border (core/nodata/find.py); voids wider than
`max_void_size` input pixels may be left as nodata. METHOD (choose_method; the log says which
ran and why): `fill` (biharmonic, no network) and `delta` (from an AUXILIARY DEM) stream on
the input grid (voidfill.py); `model` runs DS-HAT (voidrepair_model.py); onto another grid the
voids are repaired on the input grid first (voidrepair_routes.py). Every input is checked
and every output path refused that an input uses before heavy work; OUTPUT, FILLED_MASK and
UNCERTAINTY are written together or not at all (voidrepair_request.output_profiles).
"""
from __future__ import annotations

import math
import os
import time
from typing import Optional


from ..errors import DemSrError
from ..monitor import Monitor
from ..nodata.auxiliary import open_auxiliary
from ..paths import check_distinct_paths
from ..raster.grid import (Grid, overlap_bounds, same_grid, target_grid)
from ..raster.io import open_dem
from ..raster.write import check_output_path
from ..raster.space import require_room
from .dshat_inputs import (load_model)
from .voidrepair_request import (CLASSICAL, METHODS, METHOD_NAMES, VoidRepairRequest,
                                 VoidRepairResult, output_names, output_profiles)
from .voidrepair_routes import (repair_here, repair_then_superresolve, repair_then_warp,
                                superresolve_route)
from .voidrepair_model import grid_change_model, repair_model

# Why METHOD=auto picks what it picks: the held-out figures of docs/quality.md (RMSE in voids,
# geometric mean over the validation DEMs, scripts/evaluate_voids.py).
AUTO_FILL_WHY = ("the bundled terrain-only DS-HAT changes the biharmonic first fill by under "
                 "2 % in voids on held-out DEMs (docs/quality.md) at several times the time")


AUTO_DELTA_WHY = ("with a second DEM, delta surface fill had 0.35× the first fill's RMSE in "
                  "voids on held-out DEMs, 0.60× on a real pair (docs/quality.md); DS-HAT "
                  "models trained with auxiliary DEMs did not beat it on the real pair")


def _overlaps(src: Grid, dst: Grid) -> bool:
    try:
        return overlap_bounds(dst, src) is not None
    except ValueError:  # no transformation between the CRSs
        return False


def choose_method(req: VoidRepairRequest, has_aux: bool) -> tuple[str, str]:
    """(method, why) for the request; errors on a method that cannot run."""
    asked = (req.method or "auto").lower()
    if asked not in METHODS:
        raise DemSrError(f"Unknown METHOD '{req.method}'. Use one of: {', '.join(METHODS)}.")
    if asked == "delta" and not has_aux:
        raise DemSrError("METHOD=delta fills voids from a second DEM of the area: give it as "
                         "AUXILIARY (any CRS and resolution), or use METHOD=fill or auto.")
    if asked in CLASSICAL and req.spectral_path:
        raise DemSrError(f"SPECTRAL is used only by METHOD=model; METHOD={asked} does not read "
                         "it. Clear SPECTRAL, or choose METHOD=model with a model trained with "
                         "spectral bands.")
    if asked != "auto":
        return asked, "as chosen"
    if req.model_path or req.spectral_path:
        return "model", "a MODEL or SPECTRAL was given"
    if has_aux:
        return "delta", AUTO_DELTA_WHY
    return "fill", AUTO_FILL_WHY


def voidrepair(req: VoidRepairRequest, monitor: Optional[Monitor] = None) -> VoidRepairResult:
    monitor = monitor or Monitor()
    started = time.perf_counter()
    check_distinct_paths({"INPUT": req.input_path, "TARGET_GRID": req.target_grid_path,
                          "SPECTRAL": req.spectral_path, "MODEL": req.model_path,
                          "AUXILIARY": req.auxiliary_path},
                         {"OUTPUT": req.output_path, "FILLED_MASK": req.mask_path,
                          "UNCERTAINTY": req.uncertainty_path})
    if not (math.isfinite(req.max_void_size) and req.max_void_size >= 0):
        raise DemSrError(f"MAX_VOID_SIZE must be a number of input pixels ≥ 0 (0 = fill every "
                         f"void), not {req.max_void_size}.")
    src = open_dem(req.input_path, req.band)
    if min(src.grid.width, src.grid.height) < 3:
        raise DemSrError(f"'{os.path.basename(req.input_path)}' is {src.grid.width}×"
                         f"{src.grid.height} cells: a void needs data around it, so void repair "
                         "needs a DEM at least 3 cells wide and high.")
    check_output_path(req.output_path, monitor.info)
    check_output_path(req.mask_path, monitor.info)
    if req.uncertainty_path:
        check_output_path(req.uncertainty_path, monitor.info)
    if req.target_grid_path and req.target_resolution:
        monitor.warning("Both TARGET_GRID and TARGET_RESOLUTION are set: TARGET_GRID wins.")
    reference = open_dem(req.target_grid_path, 1).grid if req.target_grid_path else None
    dst = target_grid(src.grid, reference, req.target_resolution)
    if not _overlaps(src.grid, dst):
        raise DemSrError("The target grid does not overlap the input DEM (after reprojection "
                         "to its CRS): choose a target grid that covers the DEM.")
    aux = open_auxiliary(req.auxiliary_path, src.grid) if req.auxiliary_path else None
    method, why = choose_method(req, aux is not None)
    monitor.info(f"Method: {METHOD_NAMES[method]} (METHOD={req.method or 'auto'}"
                 + (f": {why}" if why != "as chosen" else "") + ").")
    if method == "fill" and aux is not None:
        monitor.warning("METHOD=fill does not read AUXILIARY: use METHOD=delta or auto to fill "
                        "voids from it.")
    if method == "fill" and req.model_path:
        monitor.warning(f"METHOD={method} does not use MODEL.")
    profiles = output_profiles(req, src, dst)
    if method == "model" and not same_grid(src.grid, dst):
        loaded = load_model(req.model_path, aux is not None, req.device)
        if grid_change_model(*loaded, src.grid, dst, monitor):
            return repair_model(req, src, dst, aux, profiles, monitor, started, loaded)
    if superresolve_route(src.grid, dst):
        require_room(profiles, output_names(req))
        return repair_then_superresolve(req, src, dst, aux, method, profiles, monitor)
    if method in CLASSICAL and not same_grid(src.grid, dst):
        require_room(profiles, output_names(req))
        return repair_then_warp(req, src, dst, aux, method, profiles, monitor)
    return repair_here(req, src, dst, aux, method, monitor, started)
