"""The HTML report of Evaluate DEM: metrics table and PNG figures (matplotlib, Agg).

Figures go into a folder `<report name>_files` beside the HTML file, which
refers to them by relative path, so the report can be moved with its folder
and opens in the Processing Results Viewer and in any browser. Report and figures are
staged (core/staging.py) and appear with the run's other outputs; the folder is replaced
only when it holds nothing but this report's pictures (check_pictures_folder).
"""
from __future__ import annotations

import html
import math
import os
from typing import Optional

import numpy as np
from scipy import ndimage

from ..monitor import Monitor
from ..raster.grid import Grid
from ..staging import Staged, check_own_folder
from ..terrain import compute_derivatives
from .metrics import HIGHER_IS_BETTER, METRICS, UNITS

LABELS = {"rmse": "Elevation RMSE", "mae": "Elevation MAE", "bias": "Bias (mean error)",
          "p95": "P95 |error|", "max_abs": "Max |error|", "slope_rmse": "Slope RMSE",
          "aspect_rmse": "Aspect RMSE (circular)", "profile_curvature_rmse":
          "Profile curvature RMSE", "plan_curvature_rmse": "Plan curvature RMSE",
          "stream_recall": "Stream recall (reference streams reproduced ±1 cell)",
          "stream_precision": "Stream precision (result streams that are real ±1 cell)",
          "ssim": "SSIM", "psnr": "PSNR"}
# the only files a report writes into its folder
PICTURES = ("hillshades.png", "error_map.png", "error_window.png", "histogram.png",
            "error_vs_slope.png", "uncertainty.png")
MAX_PLOT_PX = 1500  # the full-extent map is subsampled to at most this many pixels a side


def best_of(metric: str, values: dict) -> set:
    """Names holding the best finite value of a metric (|bias| for bias)."""
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return set()
    key = (lambda v: -v) if metric in HIGHER_IS_BETTER else \
        (abs if metric == "bias" else (lambda v: v))
    best = min(key(v) for v in finite.values())
    return {k for k, v in finite.items() if key(v) == best}


def largest_error_window(err: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(row0, col0, height, width) of the size×size window with the largest mean squared
    error among windows at least half valid."""
    h, w = err.shape
    sh, sw = min(size, h), min(size, w)
    valid = np.isfinite(err)
    e2 = np.where(valid, err.astype(np.float64) ** 2, 0.0)
    total = ndimage.uniform_filter(e2, (sh, sw), mode="constant")
    count = ndimage.uniform_filter(valid.astype(np.float64), (sh, sw), mode="constant")
    # centres whose window lies inside the grid
    r_lo, c_lo = sh // 2, sw // 2
    r_hi, c_hi = h - (sh - sh // 2) + 1, w - (sw - sw // 2) + 1
    score = np.full_like(total, -1.0)
    inner = (slice(r_lo, max(r_hi, r_lo + 1)), slice(c_lo, max(c_hi, c_lo + 1)))
    ok = count[inner] >= 0.5 - 1e-9
    score[inner] = np.where(ok, total[inner] / np.maximum(count[inner], 1e-12), -1.0)
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    r0 = int(min(max(r - sh // 2, 0), h - sh))
    c0 = int(min(max(c - sw // 2, 0), w - sw))
    return r0, c0, sh, sw


def window_from_bounds(bounds, crs: Optional[str], grid: Grid) -> tuple[int, int, int, int]:
    """(row0, col0, height, width) of an extent on the grid, clipped to it."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    if crs and grid.crs is not None and CRS.from_user_input(crs) != grid.crs:
        bounds = transform_bounds(CRS.from_user_input(crs), grid.crs, *bounds)
    inv = ~grid.transform
    c0, r0 = inv * (bounds[0], bounds[3])
    c1, r1 = inv * (bounds[2], bounds[1])
    r0, c0 = max(0, int(math.floor(r0))), max(0, int(math.floor(c0)))
    r1, c1 = min(grid.height, int(math.ceil(r1))), min(grid.width, int(math.ceil(c1)))
    if r1 - r0 < 3 or c1 - c0 < 3:
        from ..errors import DemSrError
        raise DemSrError("The picture window lies outside the evaluated area (or is under "
                         "3 cells wide).")
    return r0, c0, r1 - r0, c1 - c0


def hillshade(dem: np.ndarray, grid: Grid, azimuth: float = 315.0, altitude: float = 45.0
              ) -> np.ndarray:
    """Hillshade 0..1 from core.terrain's Horn slope and aspect."""
    d = compute_derivatives(dem, grid, {"slope", "aspect"})
    slope, aspect = np.radians(d["slope"]), np.radians(np.nan_to_num(d["aspect"]))
    zen, az = math.radians(90.0 - altitude), math.radians(azimuth)
    hs = math.cos(zen) * np.cos(slope) + math.sin(zen) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(hs, 0.0, 1.0)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.4g}"


def _table(by_dem: dict, names: list) -> str:
    present = [n for n in names if n in by_dem]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in present)
    rows = [f"<tr><th>metric</th><th>unit</th>{head}</tr>"]
    for m in METRICS:
        vals = {n: by_dem[n][m] for n in present}
        best = best_of(m, vals) if len(present) > 1 else set()
        cells = "".join(f'<td class="best">{_fmt(vals[n])} ★</td>' if n in best
                        else f"<td>{_fmt(vals[n])}</td>" for n in present)
        rows.append(f"<tr><td>{LABELS[m]}</td><td>{UNITS[m]}</td>{cells}</tr>")
    cells = "".join(f"<td>{by_dem[n]['n']}</td>" for n in present)
    rows.append(f"<tr><td>Cells counted</td><td></td>{cells}</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def pictures_folder(path: str) -> str:
    """The folder of the report's pictures: `<report name>_files` beside it."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(path)), f"{stem}_files")


def check_pictures_folder(path: str, inputs) -> None:
    """Before work: the pictures folder a run replaces holds only a report's pictures."""
    check_own_folder(pictures_folder(path), PICTURES, inputs, "the report's pictures")


def uncertainty_figure(plt, cal):
    """Reliability diagram (RMSE against RMS σ per tenth by σ) and the share within 1σ / 2σ."""
    from .calibration import GAUSSIAN_WITHIN

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    promised = [g["rms_sigma"] for g in cal.bins]
    actual = [g["rmse"] for g in cal.bins]
    top = max(max(promised), max(actual)) * 1.05 or 1.0
    a.plot([0, top], [0, top], color="grey", linestyle="--", label="calibrated (RMSE = σ)")
    a.plot(promised, actual, marker="o", label="tenths of the cells by σ")
    a.set_xlabel("RMS σ of the tenth (m)")
    a.set_ylabel("RMSE of the tenth (m)")
    a.set_xlim(0, top)
    a.set_ylim(0, top)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    x = np.arange(1, len(cal.bins) + 1)
    b.bar(x, [100 * g["within_1"] for g in cal.bins], color="#6a51a3", label="within 1σ")
    b.axhline(100 * GAUSSIAN_WITHIN[1], color="grey", linestyle="--", label="68.3 %")
    b.axhline(100 * cal.within_1, color="#6a51a3", linestyle=":",
              label=f"all cells: {100 * cal.within_1:.1f} % within 1σ, "
                    f"{100 * cal.within_2:.1f} % within 2σ")
    b.set_xlabel("tenth of the cells by σ (1 = most certain)")
    b.set_ylabel("cells with |error| ≤ σ (%)")
    b.set_ylim(0, 130)  # room above the bars for the legend
    b.set_yticks(range(0, 101, 20))
    b.legend(fontsize=8, loc="upper left")
    return fig


def uncertainty_html(cal) -> str:
    """The uncertainty section of the report (empty without an UNCERTAINTY input)."""
    if cal is None:
        return ""
    rows = "".join(f"<tr><td>{k + 1}</td><td>{_fmt(g['sigma_lo'])}–{_fmt(g['sigma_hi'])}</td>"
                   f"<td>{g['n']}</td><td>{_fmt(g['rms_sigma'])}</td><td>{_fmt(g['rmse'])}</td>"
                   f"<td>{100 * g['within_1']:.1f} %</td></tr>" for k, g in enumerate(cal.bins))
    return (f"<h2>Uncertainty</h2><p>{cal.n} cells with a σ: {100 * cal.within_1:.1f} % "
            f"within 1σ (68.3 % for a calibrated Gaussian σ), {100 * cal.within_2:.1f} % within "
            f"2σ (95.4 %). RMSE {_fmt(cal.rmse)} m against an RMS σ of {_fmt(cal.rms_sigma)} m; "
            f"the 10 % cells with the largest σ have {cal.top10_ratio:.2f}× the RMSE of all "
            "cells.</p><table><tr><th>tenth by σ</th><th>σ range (m)</th><th>cells</th>"
            f"<th>RMS σ (m)</th><th>RMSE (m)</th><th>within 1σ</th></tr>{rows}</table>")


def write_html_report(path: str, res, reference: np.ndarray, dems: list, ref_slope: np.ndarray,
                 regions: dict, req, stage: Staged, monitor: Optional[Monitor] = None
                 ) -> list[str]:
    """Stages the HTML report and its figures (they appear on stage.commit()); returns the
    staged figure paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    monitor = monitor or Monitor()
    folder_name = os.path.basename(pictures_folder(path))
    folder = stage.folder(pictures_folder(path), PICTURES)
    grid, names, where = res.grid, res.names, regions["all"]
    errs = [np.where(where, d - reference, np.nan) for d in dems]
    if req.window is not None:
        r0, c0, h, w = window_from_bounds(req.window, req.window_crs, grid)
        how = "the window asked for"
    else:
        r0, c0, h, w = largest_error_window(errs[0], req.window_size)
        how = "the window with the largest RMSE of the result"
    c1 = c0 + w
    win = (slice(r0, r0 + h), slice(c0, c1))
    wgrid = Grid(grid.window_transform(r0, c0), w, h, grid.crs)
    figs: list[tuple[str, str]] = []

    def save(fig, name: str, caption: str) -> None:
        assert name in PICTURES
        fig.savefig(os.path.join(folder, name), dpi=100, bbox_inches="tight")
        plt.close(fig)
        figs.append((name, caption))

    # hillshades of the same window
    panels = [(res.reference_name + " (reference)", reference)] + list(zip(names, dems))
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax, (label, dem) in zip(axes.flat, panels):
        ax.imshow(hillshade(dem[win], wgrid), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    save(fig, "hillshades.png", f"Hillshades (sun 315°, 45°) of {how}: rows {r0}–{r0 + h - 1}, "
         f"columns {c0}–{c1 - 1} of the evaluation grid.")
    monitor.progress(0.3)

    # error map of the result, whole area, window outlined
    # one ramp for all DEMs (the largest P99 |error|); the result's own for its full map
    p99 = [float(np.nanpercentile(np.abs(e), 99)) for e in errs]
    lim = max(p99) or 1e-6
    lim_result = p99[0] or lim
    step = max(1, math.ceil(max(grid.width, grid.height) / MAX_PLOT_PX))
    fig, ax = plt.subplots(figsize=(8, 8 * grid.height / max(grid.width, 1) + 0.5))
    im = ax.imshow(errs[0][::step, ::step], cmap="RdBu_r", vmin=-lim_result, vmax=lim_result,
                   interpolation="nearest")
    ax.add_patch(Rectangle(((c0 - 0.5) / step, (r0 - 0.5) / step), w / step, h / step,
                           fill=False, edgecolor="black", linewidth=1.2))
    fig.colorbar(im, ax=ax, label="result − reference (m)", shrink=0.8)
    ax.set_title(f"Error of {names[0]} (ramp ±P99 |error| = ±{lim_result:.3g} m)", fontsize=10)
    save(fig, "error_map.png", "Error map (result − reference); blue: too low, red: too high. "
         "The box is the hillshade window.")

    # error maps of every DEM in the window, one ramp
    fig, axes = plt.subplots(1, len(dems), figsize=(4 * len(dems), 4), squeeze=False)
    for ax, name, e in zip(axes.flat, names, errs):
        im = ax.imshow(e[win], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes.flat), label="error (m)", shrink=0.8)
    save(fig, "error_window.png", f"Errors of every DEM in the hillshade window, one ramp "
         f"(±{lim:.3g} m, the largest P99 |error| of the DEMs).")
    monitor.progress(0.6)

    # histograms
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(-lim * 1.5, lim * 1.5, 81)
    for name, e in zip(names, errs):
        v = e[np.isfinite(e)]
        ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.3,
                label=name, density=True)
    ax.set_xlabel("error (m); values beyond the axis are counted in the end bins")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    save(fig, "histogram.png", "Error histograms (result − reference).")

    # error against slope
    s = ref_slope[where]
    edges = np.unique(np.nanpercentile(s, np.linspace(0, 100, 11)))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if edges.size >= 2:
        idx = np.clip(np.digitize(s, edges[1:-1]), 0, edges.size - 2)
        centres = [float(np.median(s[idx == k])) if np.any(idx == k) else np.nan
                   for k in range(edges.size - 1)]
        for name, e in zip(names, errs):
            v = e[where]
            rm = [float(np.sqrt(np.nanmean(v[idx == k] ** 2))) if np.any(idx == k) else np.nan
                  for k in range(edges.size - 1)]
            ax.plot(centres, rm, marker="o", label=name)
    ax.set_xlabel("reference slope (°), median of each tenth of the cells")
    ax.set_ylabel("elevation RMSE (m)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, "error_vs_slope.png", "Elevation RMSE against slope (cells split into tenths by "
         "the reference's slope).")
    if res.calibration is not None:
        save(uncertainty_figure(plt, res.calibration), "uncertainty.png",
             "Uncertainty against the actual error: the evaluated cells in tenths by σ. Left: "
             "each tenth's RMSE against its RMS σ (on the line: σ is right on average). Right: "
             "the share of each tenth within 1σ and 2σ (68.3 % and 95.4 % for a calibrated "
             "Gaussian σ).")
    monitor.progress(0.9)

    tables = "".join(f"<h3>{html.escape(r)} ({res.pixels[r]} cells)</h3>{_table(by, names)}"
                     for r, by in res.metrics.items() if by)
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
    images = "".join(f'<figure><img src="{folder_name}/{f}" alt="{html.escape(c)}">'
                     f"<figcaption>{html.escape(c)}</figcaption></figure>" for f, c in figs)
    doc = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Evaluate DEM: {html.escape(names[0])}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1400px}}
table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #bbb;padding:3px 8px;
text-align:right}}td:first-child{{text-align:left}}.best{{font-weight:bold;background:#e3f4e3}}
img{{max-width:100%}}figure{{margin:1em 0}}figcaption{{font-size:90%;color:#444}}</style>
</head><body>
<h1>Evaluate DEM: {html.escape(names[0])}</h1>
<p>Reference: <b>{html.escape(res.reference_name)}</b> ({html.escape(req.reference_path)}).<br>
Result: {html.escape(req.input_path)}.<br>
Evaluation grid: {grid.width}×{grid.height} cells of {grid.res[0]:.6g}×{grid.res[1]:.6g}
CRS units; {html.escape(res.alignment)}.<br>
Every DEM is judged on the same cells: valid in the reference and in every DEM, inside the
mask. Errors are result − reference. ★ marks the best value of each row (smallest error,
smallest |bias|, largest SSIM, PSNR and stream shares).<br>
PSNR peak = {res.peak:.6g} m, the reference's elevation range over the evaluated cells (SSIM
uses the same range). Streams: cells with ≥ {req.stream_threshold} cells draining through
them (Terrain derivatives, D8). Curvatures in 1/m (Evans–Young); plan curvature is unstable
on nearly flat ground.</p>
{f"<p>Warnings:</p><ul>{warn}</ul>" if warn else ""}
<h2>Metrics</h2>
{tables}
{uncertainty_html(res.calibration)}
<h2>Pictures</h2>
{images}
</body></html>
"""
    stage.write_text(path, doc)
    monitor.progress(1.0)
    return [os.path.join(folder, f) for f, _ in figs]
