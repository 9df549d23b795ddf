"""Evaluate DEM: a DEM (and comparison DEMs) against a reference, with a report.

Steps: check the inputs (overlap, CRS, nodata, mask) before any heavy work;
bring everything onto one grid (align.py); optionally make the classical
baselines through the Super-resolve engine; compute terrain derivatives with
core.terrain; the METRICS of metrics.py per DEM and region (all, inside and
outside filled voids); then the files (outputs.py: all of them or none).
Every DEM is judged on the same cells: those valid in the reference and in
every DEM, inside the mask.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import rasterio

from ..nodata.find import MASK_AUXILIARY, MASK_FILLED, MASK_KEPT
from ..errors import DemSrError
from ..monitor import Monitor
from ..raster.grid import Grid, same_grid
from ..paths import check_distinct_paths
from ..nodata.find import SentinelScan
from ..raster.io import open_dem, read_band
from ..raster.write import check_destination, check_output_path, remove_stale_partials
from ..raster.space import check_space, raster_bytes
from ..terrain import DEFAULT_STREAM_THRESHOLD, compute_derivatives
from .align import ALIGN_METHODS, auto_method, bring_onto, overlap_bounds
from .calibration import Calibration, calibration
from .metrics import TERRAIN_INPUTS, terrain_metrics
from .outputs import write_outputs
from .regions import extent_polygon, mask_from_geometries

ALIGN_TARGETS = ("reference_to_result", "result_to_reference")
CLASSICAL_BASELINES = ("lanczos", "cubic", "cubicspline")
REGION_ALL, REGION_VOIDS, REGION_DATA = "all", "inside voids", "outside voids"


@dataclass
class EvaluationRequest:
    input_path: str
    reference_path: str
    compare_paths: Sequence[str] = ()
    input_name: Optional[str] = None           # names in the report; default: file names
    compare_names: Optional[Sequence[str]] = None
    reference_name: Optional[str] = None
    band: int = 1
    reference_band: int = 1
    align: str = "reference_to_result"          # which grid everything is evaluated on
    resampling: str = "auto"                     # auto: average when coarser, else bilinear
    mask_geometries: Optional[Sequence[dict]] = None   # GeoJSON polygons …
    mask_crs: Optional[str] = None                     # … in this CRS (WKT)
    extent: Optional[tuple[float, float, float, float]] = None  # xmin, ymin, xmax, ymax …
    extent_crs: Optional[str] = None                            # … in this CRS
    filled_mask_path: Optional[str] = None      # Void repair FILLED_MASK (1, 2 = filled)
    uncertainty_path: Optional[str] = None      # 1σ per cell of the result (UNCERTAINTY)
    compare_classical: bool = False
    classical_factor: float = 2.0               # LR = reference degraded by this factor
    low_res_path: Optional[str] = None          # … or this LR DEM
    window: Optional[tuple[float, float, float, float]] = None  # hillshade window …
    window_crs: Optional[str] = None
    window_size: int = 256                      # px; default window: largest error
    stream_threshold: int = DEFAULT_STREAM_THRESHOLD
    output_html: Optional[str] = None
    output_error: Optional[str] = None
    output_table: Optional[str] = None          # CSV
    output_json: Optional[str] = None


@dataclass
class EvaluationResult:
    metrics: dict                 # region -> DEM name -> metric -> value
    names: list                   # DEM names, the result first
    reference_name: str
    grid: Grid
    alignment: str                # how the grids were brought together, in words
    peak: float                   # PSNR peak = reference elevation range
    pixels: dict                  # region -> cells counted
    warnings: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    calibration: Optional[Calibration] = None   # of UNCERTAINTY, over all evaluated cells

    @property
    def headline(self) -> dict:
        """The result's metrics over all evaluated cells."""
        return self.metrics[REGION_ALL][self.names[0]]


def _read(path: str, band: int) -> tuple[np.ndarray, Grid]:
    src = open_dem(path, band)
    with rasterio.open(path) as ds:
        return read_band(ds, band), src.grid


def _name(path: str, given: Optional[str]) -> str:
    return given or os.path.splitext(os.path.basename(path))[0]


def _check_request(req: EvaluationRequest) -> None:
    if req.align not in ALIGN_TARGETS:
        raise DemSrError(f"Unknown alignment '{req.align}'; use one of {', '.join(ALIGN_TARGETS)}.")
    if req.resampling not in ALIGN_METHODS:
        raise DemSrError(f"Unknown resampling '{req.resampling}'; use one of "
                         f"{', '.join(ALIGN_METHODS)}.")
    if req.compare_classical and req.low_res_path is None and not (
            math.isfinite(req.classical_factor) and 1 < req.classical_factor <= 16):
        raise DemSrError(f"The classical factor must be above 1 and at most 16 "
                         f"(got {req.classical_factor:g}).")
    if req.stream_threshold < 1:
        raise DemSrError("The stream threshold must be at least 1 cell.")
    check_distinct_paths(
        {"INPUT": req.input_path, "REFERENCE": req.reference_path, "COMPARE": req.compare_paths,
         "FILLED_MASK": req.filled_mask_path, "LOW_RES": req.low_res_path,
         "UNCERTAINTY": req.uncertainty_path},
        {"OUTPUT_HTML": req.output_html, "OUTPUT_TABLE": req.output_table,
         "OUTPUT_JSON": req.output_json, "OUTPUT_ERROR": req.output_error})
    if req.output_error:
        check_output_path(req.output_error)
    for path in (req.output_html, req.output_table, req.output_json):
        if path:
            check_destination(path)
    if req.output_html:
        from .html_report import check_pictures_folder, pictures_folder

        remove_stale_partials(pictures_folder(req.output_html))
        check_pictures_folder(req.output_html, _inputs(req))


def _inputs(req: EvaluationRequest) -> list:
    return [req.input_path, req.reference_path, *req.compare_paths, req.filled_mask_path,
            req.low_res_path, req.uncertainty_path]


# Room asked for the small outputs: the report's pictures (a few MB at 100 dpi), the tables.
REPORT_BYTES, TABLE_BYTES = 20_000_000, 1_000_000


def _check_room(req: EvaluationRequest, grid: Grid) -> None:
    """Every output fits, on whichever disks they go, before heavy work (the error raster
    is at most the evaluation grid, uncompressed)."""
    needs = [(req.output_error, raster_bytes(grid.width, grid.height)),
             (req.output_html, REPORT_BYTES), (req.output_table, TABLE_BYTES),
             (req.output_json, TABLE_BYTES)]
    check_space([(p, n) for p, n in needs if p], "the evaluation's outputs")


def _warn_fill_values(data: np.ndarray, path: str, band: int, warn) -> None:
    """Undeclared fill values (−9999, −32767, …) read as elevations ruin every metric."""
    scan = SentinelScan()
    scan.add(data)
    text = scan.warning(path, band, open_dem(path, band).nodata)
    if text:
        warn(text)


def _crop_to(valid: np.ndarray, grid: Grid) -> tuple[tuple[slice, slice], Grid]:
    """The bounding box of the valid cells, as slices and a grid."""
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (slice(r0, r1), slice(c0, c1)), Grid(grid.window_transform(r0, c0), int(c1 - c0),
                                                int(r1 - r0), grid.crs)


def _mask_region(req: EvaluationRequest, grid: Grid, overlap: tuple) -> Optional[np.ndarray]:
    """The MASK (polygons) and extent as one boolean grid, None when neither is given."""
    region = None
    parts = []
    if req.mask_geometries is not None:
        parts.append((list(req.mask_geometries), req.mask_crs, "mask layer"))
    if req.extent is not None:
        parts.append(([extent_polygon(req.extent)], req.extent_crs, "extent"))
    for geoms, crs, what in parts:
        m = mask_from_geometries(geoms, crs, grid)
        if not m.any():
            b = overlap
            raise DemSrError(f"The {what} lies outside the area where the DEM and the reference "
                             f"overlap ({b[0]:.6g}, {b[1]:.6g} : {b[2]:.6g}, {b[3]:.6g} in the "
                             "DEM's CRS): nothing to evaluate there.")
        region = m if region is None else region & m
    return region


def _check_footprints(req: EvaluationRequest, warn) -> tuple:
    """(result source, reference source, their overlap): every input opens and overlaps
    the result, before anything is read."""
    res_src = open_dem(req.input_path, req.band)
    ref_src = open_dem(req.reference_path, req.reference_band)
    cmp_srcs = [open_dem(p) for p in req.compare_paths]
    if (res_src.grid.crs is None) != (ref_src.grid.crs is None):
        warn("Only one of the DEM and the reference has a CRS: both are taken to be in it.")
    overlap = overlap_bounds(res_src.grid, ref_src.grid)
    if overlap is None:
        raise DemSrError("The DEM and the reference do not overlap (compared in the DEM's CRS). "
                         "Check that both have the right CRS and cover the same ground.")
    for path, src in zip(req.compare_paths, cmp_srcs):
        if overlap_bounds(res_src.grid, src.grid) is None:
            raise DemSrError(f"The comparison DEM '{os.path.basename(path)}' does not overlap the "
                             "DEM being evaluated.")
    if req.filled_mask_path:
        fm_src = open_dem(req.filled_mask_path)
        if overlap_bounds(res_src.grid, fm_src.grid) is None:
            raise DemSrError("The filled-pixel mask does not overlap the DEM.")
    if req.uncertainty_path:
        if overlap_bounds(res_src.grid, open_dem(req.uncertainty_path).grid) is None:
            raise DemSrError("The uncertainty raster does not overlap the DEM: give the "
                             "UNCERTAINTY written with this result.")
    return res_src, ref_src, overlap


def _calibrate(sigma: np.ndarray, error: np.ndarray, region: np.ndarray,
               voids: Optional[np.ndarray], warn, monitor: Monitor) -> Optional[Calibration]:
    """UNCERTAINTY against the result's error over the evaluated cells (None: σ is nodata
    on all of them). `voids`: the filled cells when FILLED_MASK is given — Void repair's σ
    covers exactly those, which is no cause for a warning."""
    if not np.isfinite(sigma[region]).any():
        warn("The uncertainty raster is nodata on every evaluated cell: no calibration.")
        return None
    cal = calibration(np.where(region, error, np.nan), sigma)
    missing = int(region.sum()) - cal.n
    if missing and voids is not None and np.array_equal(np.isfinite(sigma) & region, voids):
        monitor.info(f"The uncertainty raster covers the {cal.n} filled cells (Void repair's "
                     "UNCERTAINTY): the calibration is over them.")
    elif missing:
        warn(f"The uncertainty raster is nodata on {missing} evaluated cells: the "
             "calibration counts the others.")
    monitor.info(f"Uncertainty: {100 * cal.within_1:.1f} % of the cells within 1σ "
                 f"(68.3 % for a calibrated Gaussian σ), {100 * cal.within_2:.1f} % "
                 f"within 2σ (95.4 %); the 10 % cells with the largest σ have "
                 f"{cal.top10_ratio:.2f}× the RMSE.")
    return cal


def evaluate(req: EvaluationRequest, monitor: Optional[Monitor] = None) -> EvaluationResult:
    monitor = monitor or Monitor()
    _check_request(req)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        monitor.warning(msg)

    # 1. Inputs and their footprints, before any heavy work.
    res_src, ref_src, overlap = _check_footprints(req, warn)
    monitor.check()

    _check_room(req, res_src.grid if req.align == "reference_to_result" else ref_src.grid)

    # 2. One grid for everything.
    result, res_grid = _read(req.input_path, req.band)
    reference, ref_grid = _read(req.reference_path, req.reference_band)
    _warn_fill_values(result, req.input_path, req.band, warn)
    _warn_fill_values(reference, req.reference_path, req.reference_band, warn)
    onto_result = req.align == "reference_to_result"
    grid, moved, moved_grid = ((res_grid, "reference", ref_grid) if onto_result
                               else (ref_grid, "result", res_grid))
    if same_grid(moved_grid, grid):
        alignment = "same grid: nothing resampled"
    else:
        method = req.resampling if req.resampling != "auto" else auto_method(moved_grid, grid)
        alignment = (f"{moved} brought onto the {'result' if onto_result else 'reference'}'s "
                     f"grid with GDAL '{method}' resampling")
    reference = bring_onto(reference, ref_grid, grid, req.resampling)
    result = bring_onto(result, res_grid, grid, req.resampling)
    names = [_name(req.input_path, req.input_name)]
    dems = [result]
    cnames = list(req.compare_names or [])
    for i, path in enumerate(req.compare_paths):
        data, g = _read(path, 1)
        _warn_fill_values(data, path, 1, warn)
        dems.append(bring_onto(data, g, grid, req.resampling))
        names.append(_unique(cnames[i] if i < len(cnames) else _name(path, None), names))
    monitor.info(f"Evaluation grid: {grid.width}×{grid.height} cells of "
                 f"{grid.res[0]:.6g}×{grid.res[1]:.6g} CRS units; {alignment}.")
    ref_valid = np.isfinite(reference)
    if not (ref_valid & np.isfinite(result)).any():
        raise DemSrError("Where the DEM and the reference overlap, one of them is nodata "
                         "everywhere: no cell can be compared. Check the nodata values and bands.")
    region = _mask_region(req, grid, overlap)
    filled = None
    if req.filled_mask_path:
        fm, fg = _read(req.filled_mask_path, 1)
        filled = bring_onto(fm, fg, grid, "nearest")
    sigma = None
    if req.uncertainty_path:
        data, g = _read(req.uncertainty_path, 1)
        sigma = bring_onto(data, g, grid, req.resampling)
        if np.any(sigma[np.isfinite(sigma)] < 0):
            raise DemSrError("The uncertainty raster has negative values: it must hold one "
                             "standard deviation per cell (≥ 0), as Super-resolve DEM's "
                             "UNCERTAINTY does.")
    monitor.progress(0.1)
    monitor.check()

    # 3. Classical baselines through the Super-resolve engine.
    if req.compare_classical:
        from .baselines import classical_baselines

        base = classical_baselines(reference, grid, req.classical_factor, req.low_res_path,
                                   CLASSICAL_BASELINES, monitor.sub(0.1, 0.3), warn)
        for label, data in base.items():
            names.append(_unique(label, names))
            dems.append(data)
    monitor.progress(0.3)

    # 4. Common cells, cropped to where they are.
    common = ref_valid.copy()
    for d in dems:
        common &= np.isfinite(d)
    if region is not None:
        if not (common & region).any():
            raise DemSrError("The mask/extent covers no cell where the DEM and the reference are "
                             "both valid: nothing to evaluate there.")
    if not common.any():
        raise DemSrError("No cell is valid in the reference and in every DEM: nothing to compare. "
                         "Check the comparison DEMs' extents and nodata.")
    for name, d in zip(names, dems):
        lost = np.count_nonzero(ref_valid & np.isfinite(result) & ~np.isfinite(d))
        if lost:
            warn(f"{name}: {lost} cells are nodata where the result and reference are valid; "
                 "every DEM is judged on the cells valid in all of them.")
    sl, grid = _crop_to(common, grid)
    reference = np.where(common, reference, np.nan)[sl]
    dems = [np.where(common, d, np.nan)[sl] for d in dems]
    common = common[sl]
    region = common if region is None else (region[sl] & common)
    regions = {REGION_ALL: region}
    if filled is not None:
        filled = filled[sl]
        regions[REGION_VOIDS] = region & ((filled == MASK_FILLED) | (filled == MASK_AUXILIARY))
        regions[REGION_DATA] = region & (filled == MASK_KEPT)
        if not regions[REGION_VOIDS].any():
            warn("The filled-pixel mask marks no evaluated cell as filled (value 1 or 2).")

    # 5. Terrain derivatives (core.terrain) of the reference and each DEM.
    peak = float(np.nanmax(reference[region]) - np.nanmin(reference[region]))
    steps = len(dems) + 1
    ref_terrain = compute_derivatives(reference, grid, TERRAIN_INPUTS, req.stream_threshold,
                                      monitor.sub(0.3, 0.3 + 0.5 / steps))
    metrics: dict = {r: {} for r in regions}
    for i, (name, d) in enumerate(zip(names, dems)):
        monitor.check()
        terrain = compute_derivatives(d, grid, TERRAIN_INPUTS, req.stream_threshold,
                                      monitor.sub(0.3 + 0.5 * (i + 1) / steps,
                                                  0.3 + 0.5 * (i + 2) / steps))
        for rname, where in regions.items():
            if where.any():
                metrics[rname][name] = terrain_metrics(d, reference, terrain, ref_terrain,
                                                       where, peak)
        del terrain
    pixels = {r: int(w.sum()) for r, w in regions.items()}
    cal = None
    if sigma is not None:
        cal = _calibrate(sigma[sl], dems[0] - reference, region, regions.get(REGION_VOIDS),
                         warn, monitor)
    if not np.any(ref_terrain["streams"][region] == 1):
        warn(f"The reference has no stream cell (≥ {req.stream_threshold} cells draining) in the "
             "evaluated area: stream agreement is not defined (NaN).")
    monitor.progress(0.8)

    result_obj = EvaluationResult(metrics, names, _name(req.reference_path, req.reference_name),
                                  grid, alignment, peak, pixels, warnings, calibration=cal)
    # 6. Outputs, staged and moved into place together.
    monitor.check()
    err = np.where(region, dems[0] - reference, np.nan).astype(np.float32)
    write_outputs(req, result_obj, err, reference, dems, ref_terrain["slope"], regions,
                  monitor.sub(0.85, 1.0))
    monitor.progress(1.0)
    return result_obj


def _unique(name: str, taken: list) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name} ({k})", k + 1
    return out
