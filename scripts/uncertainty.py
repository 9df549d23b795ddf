"""Fit and check the UNCERTAINTY of Super-resolve DEM (METHOD=model).

    python scripts/uncertainty.py fit [--factors 1.25 1.5625 2 2.5 3 4 6 8] [--features …]
        [--out resources/models/demsr_uncertainty.json]
    python scripts/uncertainty.py report [--factors 1.25 … 8] [--coefficients PATH]
        [--out build/uncertainty.md]

fit: on the bundled models' training DEMs (scripts/default_data.py TRAIN, non-GPL sources as
for the models), never on the validation DEMs. Per factor, LR =
area average of the HR DEM (as scripts/evaluate_factors.py makes it), the bundled model
through the engine, the features of core/uncertainty/estimate.py on the whole raster; the
shape of σ by a Gaussian likelihood with every DEM weighted alike (errors and features in
units of that DEM's RMSE), then one factor so that 68.3 % of the pooled cells lie within 1σ.
--features fits a subset (the others get 0): how the alternatives in docs/quality.md were
made.

report: on the validation DEMs, Super-resolve DEM with UNCERTAINTY through the engine,
errors against the HR DEM: share within 1σ and 2σ per DEM and pooled, the top-10 % ratio
(RMSE of the 10 % cells with the largest σ over the RMSE), the reliability table (pooled
cells in tenths by σ) and the extra time of UNCERTAINTY. Prints markdown for docs/quality.md.

voids fit / voids report: the same for Void repair's UNCERTAINTY (METHOD=fill and delta,
core/uncertainty/voids.py), on each DEM with the synthetic radar-like voids of
scripts/evaluate_voids.py (realisations 2026, 2027, …) and, for delta, its synthetic
auxiliary, through core.pipelines.voidrepair as demsr:voidrepair runs it. fit: k per
method on the training DEMs so that 68.3 % of the pooled filled cells lie within 1σ
(resources/models/demsr_void_uncertainty.json); report: the figures above on the validation
DEMs for fill, delta and model (the bundled DS-HAT, whose σ is the first fill's), and the
extra time of UNCERTAINTY as a ratio to the same run without it.

    python scripts/uncertainty.py voids fit [--seeds 3] [--out PATH]
    python scripts/uncertainty.py voids report [--seeds 3] [--coefficients PATH] [--out F]
        [--time-on DEM …]

tta: the alternative of test-time flips, for comparison (integer factors): σ = k × the
standard deviation of the model's outputs on the input and its three flips (each flipped
back), k fitted as above on the training DEMs; the same figures on the validation DEMs, and
the time against one model run.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace

import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from default_data import TERRAIN, TRAIN, VALIDATION, paths, write_report  # noqa: E402
from evaluate_factors import make_lr  # noqa: E402
from demsr.core.errors import DemSrError  # noqa: E402
from demsr.core.evaluation.calibration import calibration  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.nodata.fill import fill_nearest  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.pipelines.upsamplers import TileInput  # noqa: E402
from demsr.core.raster.io import open_dem, read_band, read_window  # noqa: E402
from demsr.core.raster.tiles import Tile  # noqa: E402
from demsr.core.uncertainty import estimate, voids  # noqa: E402

SAMPLES = 40_000  # cells per DEM and factor in the fit
MIN_CELLS = 1000  # DEMs with fewer valid cells (all-void crops) are left out


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def run_model(lr_path, factor, tmp, uncertainty=False, coefficients=None):
    """(model output, σ or None, seconds) through the engine."""
    out = os.path.join(tmp, f"sr_{factor:g}.tif")
    unc = os.path.join(tmp, f"unc_{factor:g}.tif") if uncertainty else None
    original = estimate.COEFFICIENTS
    if coefficients:
        estimate.COEFFICIENTS = coefficients  # read when the estimator is built
    try:
        t0 = time.perf_counter()
        res = superresolve(SuperResolveRequest(lr_path, out, scale=factor, method="model",
                                               device="cpu", tile_size=512,
                                               uncertainty_path=unc), Monitor())
        seconds = time.perf_counter() - t0
    finally:
        estimate.COEFFICIENTS = original
    return _read(out), (_read(unc) if unc else None), seconds, res


def whole_features(lr_path, model, factor):
    """The estimator's features on the whole raster as one tile (the engine's padding)."""
    src = open_dem(lr_path)
    hr_h, hr_w = model.shape
    from demsr.core.raster.grid import output_grid

    dst = output_grid(src.grid, factor, None)
    est = estimate.UncertaintyEstimator(src.grid, dst, {2.0: dict.fromkeys(estimate.FEATURES,
                                                                           1.0)})
    h = est.halo
    with rasterio.open(lr_path) as ds:
        data = read_window(ds, 1, -h, -h, src.grid.height + 2 * h, src.grid.width + 2 * h,
                           pad_edge=True)
    data = fill_nearest(data)
    tile = Tile(0, 0, dst.height, dst.width, -h, -h, data.shape[0], data.shape[1])
    return est.features(TileInput(data, -h, -h), tile, np.nan_to_num(model))


FLIPS = ((False, False), (True, False), (False, True), (True, True))


def _flip(a, rows, cols):
    return a[::-1 if rows else 1, ::-1 if cols else 1]


def tta_spread(lr_path, factor, tmp):
    """(mean output, standard deviation over the four flips, seconds) through the engine."""
    from demsr.core.raster.grid import Grid
    from demsr.core.raster.write import write_array

    src = open_dem(lr_path)
    lr = _read(lr_path)
    outs, seconds = [], 0.0
    for rows, cols in FLIPS:
        path = os.path.join(tmp, "flip.tif")
        write_array(path, np.ascontiguousarray(_flip(lr, rows, cols)).astype(np.float32),
                    Grid(src.grid.transform, src.grid.width, src.grid.height, src.grid.crs))
        out, _, sec, _ = run_model(path, factor, tmp)
        outs.append(_flip(out, rows, cols))
        seconds += sec
    stack = np.stack(outs)
    return stack[0], stack.std(axis=0), seconds


def tta(args):
    lines = ["| DEM | factor | within 1σ | within 2σ | top-10 % ratio |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            ratios = []
            for path in paths(TRAIN):
                hr, _, lr_path = make_lr(path, factor, tmp)
                out, spread, _ = tta_spread(lr_path, factor, tmp)
                ok = np.isfinite(out - hr) & (spread > 0)
                ratios.append(np.abs(out - hr)[ok] / spread[ok])
            k = float(np.quantile(np.concatenate(ratios), 0.683))
            per, t_one, t_tta = [], 0.0, 0.0
            for path in paths(VALIDATION):
                hr, _, lr_path = make_lr(path, factor, tmp)
                t_one += run_model(lr_path, factor, tmp)[2]
                out, spread, sec = tta_spread(lr_path, factor, tmp)
                t_tta += sec
                cal = calibration(out - hr, k * spread)
                per.append(cal)
                lines.append(f"| {os.path.basename(path)} | ×{factor:g} | "
                             f"{_pct(cal.within_1)} | {_pct(cal.within_2)} | "
                             f"{cal.top10_ratio:.2f} |")
                print(lines[-1], flush=True)
            lines.append(f"| k = {k:.3g}; time {t_tta / t_one:.1f}× one model run | ×{factor:g} "
                         f"| {_pct(min(c.within_1 for c in per))}–"
                         f"{_pct(max(c.within_1 for c in per))} | | |")
    print("\n".join(lines))


def fit(args):
    from scipy.optimize import minimize

    names = args.features
    table, used = {}, []
    rng = np.random.default_rng(2026)
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            data = []
            for path in paths(TRAIN):
                hr, _, lr_path = make_lr(path, factor, tmp)
                try:
                    model, _, _, _ = run_model(lr_path, factor, tmp)
                except DemSrError as exc:  # e.g. no LR cell without nodata at ×8
                    print(f"  ×{factor:g} {os.path.basename(path)}: left out ({exc})")
                    continue
                feats = whole_features(lr_path, model, factor)
                err = model - hr
                ok = np.isfinite(err)
                for v in feats.values():
                    ok &= np.isfinite(v)
                if ok.sum() < MIN_CELLS:
                    print(f"  ×{factor:g} {os.path.basename(path)}: {int(ok.sum())} cells, "
                          "left out", flush=True)
                    continue
                idx = np.flatnonzero(ok.ravel())
                if idx.size > SAMPLES:
                    idx = rng.choice(idx, SAMPLES, replace=False)
                x = np.stack([feats[n].ravel()[idx] for n in names], 1).astype(np.float64)
                e = err.ravel()[idx].astype(np.float64)
                data.append((x, e))
                used.append(os.path.basename(path))

            def nll(c):
                total = 0.0
                for x, e in data:
                    r = np.sqrt(np.mean(e * e)) or 1.0
                    s = np.sqrt((x / r) ** 2 @ (c * c)) + 1e-9
                    total += np.mean(np.log(s) + 0.5 * (e / r / s) ** 2)
                return total

            best = minimize(nll, np.full(len(names), 0.1), method="Nelder-Mead",
                            options=dict(maxiter=4000, xatol=1e-5, fatol=1e-8))
            c = np.abs(best.x)
            ratio = np.concatenate([np.abs(e) / (np.sqrt(x ** 2 @ (c * c)) + 1e-30)
                                    for x, e in data])
            c *= np.quantile(ratio, 0.683)
            table[f"{factor:g}"] = {n: float(c[names.index(n)]) if n in names else 0.0
                                    for n in estimate.FEATURES}
            print(f"×{factor:g}: " + ", ".join(f"{n} {v:.4f}" for n, v in
                                               table[f"{factor:g}"].items()), flush=True)
    doc = {"what": "coefficients c_k of sigma^2 = sum c_k^2 x_k^2 per factor "
                   "(core/uncertainty/estimate.py)",
           "made_by": "python scripts/uncertainty.py fit " + " ".join(sys.argv[2:]),
           "fitted_on": sorted(set(used)), "target_within_1_sigma": 0.683,
           "features": names, "factors": table}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


def _row(path: str, what: str, cal) -> str:
    """One DEM's row of a calibration table (`what`: the factor or the method)."""
    name = os.path.basename(path)
    return (f"| {name} | {TERRAIN.get(name, '')} | {what} | {cal.n} | {cal.rmse:.4g} | "
            f"{cal.rms_sigma:.4g} | {_pct(cal.within_1)} | {_pct(cal.within_2)} | "
            f"{cal.top10_ratio:.2f} |")


def _pooled(errs: list, sigmas: list, per: list) -> tuple:
    """(calibration of all DEMs' cells together in metres, and in units of each DEM's RMSE)."""
    pooled = calibration(np.concatenate(errs), np.concatenate(sigmas))
    scaled = calibration(np.concatenate([e / c.rmse for e, c in zip(errs, per)]),
                         np.concatenate([s / c.rmse for s, c in zip(sigmas, per)]))
    return pooled, scaled


def _reliability(key: str, rows: list) -> list[str]:
    """The reliability table: per (label, scaled calibration) of `rows`, its tenths by σ."""
    out = [f"| {key} | tenth by σ | RMS σ / RMSE of the DEM | RMSE / RMSE of the DEM | "
           "within 1σ |", "|---|---|---|---|---|"]
    for label, cal in rows:
        for k, b in enumerate(cal.bins):
            out.append(f"| {label} | {k + 1} | {b['rms_sigma']:.3f} | {b['rmse']:.3f} | "
                       f"{_pct(b['within_1'])} |")
    return out


def _summary(pooled, scaled, per: list) -> str:
    """A summary line's figures for Super-resolve and Void repair alike: calibration pooled
    and per DEM, then the information clause (the top-10 % σ ratios, target ≥ 2)."""
    return (f"pooled within 1σ {_pct(pooled.within_1)} (target 63–73 %), within 2σ "
            f"{_pct(pooled.within_2)}; per DEM {_pct(min(c.within_1 for c in per))}–"
            f"{_pct(max(c.within_1 for c in per))} (target 50–85 %); "
            f"top-10 % σ ratio pooled in metres {pooled.top10_ratio:.2f}, pooled in units of "
            f"each DEM's RMSE {scaled.top10_ratio:.2f}, per DEM "
            f"{min(c.top10_ratio for c in per):.2f}–{max(c.top10_ratio for c in per):.2f} "
            "(target ≥ 2)")


def _pct(v):
    return f"{100 * v:.1f} %"


def report(args):
    lines = ["| DEM | terrain | factor | cells | RMSE (m) | RMS σ (m) | within 1σ | within 2σ | "
             "top-10 % σ: RMSE / RMSE |", "|---|---|---|---|---|---|---|---|---|"]
    summary, reliability = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            errs, sigmas, per = [], [], []
            t_model = t_unc = 0.0
            for path in paths(VALIDATION):
                hr, _, lr_path = make_lr(path, factor, tmp)
                _, _, plain, _ = run_model(lr_path, factor, tmp)
                model, sig, both, res = run_model(lr_path, factor, tmp, True,
                                                  args.coefficients)
                t_model += plain
                t_unc += res.uncertainty_seconds
                err = model - hr
                cal = calibration(err, sig)
                per.append(cal)
                errs.append(err[np.isfinite(err) & np.isfinite(sig)])
                sigmas.append(sig[np.isfinite(err) & np.isfinite(sig)])
                lines.append(_row(path, f"×{factor:g}", cal))
                print(lines[-1], flush=True)
            pooled, scaled = _pooled(errs, sigmas, per)
            summary.append(
                f"×{factor:g}: " + _summary(pooled, scaled, per) + "; UNCERTAINTY took "
                f"{t_unc:.2f} s on top of the model's {t_model:.2f} s "
                f"(+{100 * t_unc / t_model:.0f} %).")
            reliability.append((factor, scaled))
    rel = _reliability("factor", [(f"×{f:g}", cal) for f, cal in reliability])
    text = "\n".join(lines + [""] + summary + ["", "Reliability (validation DEMs pooled, "
                                                    "errors and σ in units of each DEM's "
                                                    "RMSE):", ""] + rel) + "\n"
    write_report(text, args.out)


VOID_METHODS = ("fill", "delta")   # fitted; the report also checks METHOD=model (the
REPORT_METHODS = VOID_METHODS + ("model",)  # bundled DS-HAT: the first fill's σ)


def void_run(path, method, tmp, seed, k=None, repeats=1):
    """(error, σ) on the filled cells of one void realisation of a DEM, and the seconds of
    the run with UNCERTAINTY and of the same run without it (the fastest of `repeats`
    alternated pairs, one process; repeats=0: one run with UNCERTAINTY, no times); `k`:
    {method: k} instead of the bundled calibration."""
    from evaluate_voids import holed_copy, write_auxiliary
    from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair

    hr, grid, lr_path = holed_copy(path, tmp, seed)
    aux = write_auxiliary(hr, grid, tmp, seed) if method == "delta" else None
    out, mask, unc = (os.path.join(tmp, n) for n in ("vout.tif", "vmask.tif", "vunc.tif"))
    req = VoidRepairRequest(lr_path, out, mask, method=method, auxiliary_path=aux,
                            device="cpu")
    original = voids.COEFFICIENTS
    if k:
        voids.COEFFICIENTS = os.path.join(tmp, "k.json")
        with open(voids.COEFFICIENTS, "w") as f:
            json.dump({"methods": {m: {"k": k[m]} for m in voids.METHODS}}, f)
    plain = both = float("inf")
    try:
        for _ in range(max(repeats, 1)):
            if repeats:
                t0 = time.perf_counter()
                voidrepair(req, Monitor())
                plain = min(plain, time.perf_counter() - t0)
            t0 = time.perf_counter()
            voidrepair(replace(req, uncertainty_path=unc), Monitor())
            both = min(both, time.perf_counter() - t0)
    finally:
        voids.COEFFICIENTS = original
    filled = np.isin(_read(mask), (1, 2))
    err, sig = _read(out) - hr, _read(unc)
    ok = filled & np.isfinite(err)
    if np.isfinite(sig[~filled]).any() or not np.isfinite(sig[filled]).all():
        raise AssertionError(f"σ is not exactly on the filled cells of {path}")
    return err[ok], sig[ok], both, plain


def void_fit(args):
    ratios = {m: [] for m in VOID_METHODS}
    used = set()
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths(TRAIN):
            for method in VOID_METHODS:
                for seed in range(2026, 2026 + args.seeds):
                    e, s, _, _ = void_run(path, method, tmp, seed,
                                          dict.fromkeys(voids.METHODS, 1.0), repeats=0)
                    if e.size:
                        ratios[method].append(np.abs(e) / np.maximum(s, 1e-30))
                        used.add(os.path.basename(path))
            print(os.path.basename(path), {m: sum(r.size for r in ratios[m])
                                           for m in VOID_METHODS}, flush=True)
    k = {m: float(np.quantile(np.concatenate(ratios[m]), 0.683)) for m in VOID_METHODS}
    doc = {"what": "k per method: sigma = k x the raw estimate of core/uncertainty/voids.py "
                   "(fill_sigma, delta_sigma)",
           "made_by": "python scripts/uncertainty.py voids fit " + " ".join(sys.argv[3:]),
           "fitted_on": sorted(used), "void_realisations": args.seeds,
           "voids": "scripts/evaluate_voids.py synthetic radar-like voids (coverage 8 %), "
                    "delta with its synthetic auxiliary (AUX)",
           "target_within_1_sigma": 0.683,
           "methods": {m: {"k": k[m], "cells": int(sum(r.size for r in ratios[m]))}
                       for m in VOID_METHODS}}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"k = {k}; wrote {args.out}")


def void_report(args):
    lines = ["| DEM | terrain | method | filled cells | RMSE (m) | RMS σ (m) | within 1σ | "
             "within 2σ | top-10 % σ: RMSE / RMSE |", "|---|---|---|---|---|---|---|---|---|"]
    summary, reliability = [], []
    k = None
    if args.coefficients:
        k = voids.load_coefficients(args.coefficients)["k"]
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            errs, sigmas, per, t_with, t_without = [], [], [], 0.0, 0.0
            for path in paths(VALIDATION):
                runs = [void_run(path, method, tmp, seed, k)
                        for seed in range(2026, 2026 + args.seeds)]
                e = np.concatenate([r[0] for r in runs])
                s = np.concatenate([r[1] for r in runs])
                t_with += sum(r[2] for r in runs)
                t_without += sum(r[3] for r in runs)
                cal = calibration(e, s)
                per.append(cal)
                errs.append(e)
                sigmas.append(s)
                lines.append(_row(path, method, cal))
                print(lines[-1], flush=True)
            pooled, scaled = _pooled(errs, sigmas, per)
            lines.append(f"| pooled | | {method} | {pooled.n} | {pooled.rmse:.4g} | "
                         f"{pooled.rms_sigma:.4g} | {_pct(pooled.within_1)} | "
                         f"{_pct(pooled.within_2)} | {pooled.top10_ratio:.2f} |")
            summary.append(
                f"METHOD={method}: " + _summary(pooled, scaled, per) + "; runs with UNCERTAINTY "
                f"took {t_with / t_without:.2f}× the time of the same runs without it "
                f"({t_with:.1f} s / {t_without:.1f} s, one process).")
            reliability.append((method, scaled))
            for name in args.time_on:   # the extra time on larger DEMs (bigger voids)
                t = [void_run(path, method, tmp, seed, repeats=3)[2:]
                     for path in paths([name]) for seed in (2026, 2027)]
                with_, without = sum(a for a, _ in t), sum(b for _, b in t)
                summary.append(f"METHOD={method} on {name} (2 realisations, fastest of 3 "
                               f"alternated runs): with UNCERTAINTY {with_ / without:.2f}× "
                               f"the time without ({with_:.1f} s / {without:.1f} s).")
    rel = _reliability("method", reliability)
    text = "\n".join(lines + [""] + summary + [
        "", f"{args.seeds} void realisation(s) per DEM, errors pooled. Reliability "
        "(validation DEMs pooled, errors and σ in units of each DEM's RMSE):", ""] + rel) + "\n"
    write_report(text, args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--factors", type=float, nargs="+",
                   default=[1.25, 1.5625, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0])
    f.add_argument("--features", nargs="+", default=list(estimate.FEATURES),
                   choices=estimate.FEATURES)
    f.add_argument("--out", default=estimate.COEFFICIENTS)
    r = sub.add_parser("report")
    r.add_argument("--factors", type=float, nargs="+",
                   default=[1.25, 1.5625, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0])
    r.add_argument("--coefficients", help="another fit's JSON (default: the bundled one)")
    r.add_argument("--out")
    t = sub.add_parser("tta")
    t.add_argument("--factors", type=float, nargs="+", default=[2.0, 4.0])
    v = sub.add_parser("voids").add_subparsers(dest="voids", required=True)
    vf = v.add_parser("fit")
    vf.add_argument("--seeds", type=int, default=3, help="void realisations per DEM")
    vf.add_argument("--out", default=voids.COEFFICIENTS)
    vr = v.add_parser("report")
    vr.add_argument("--seeds", type=int, default=3, help="void realisations per DEM")
    vr.add_argument("--coefficients", help="another fit's JSON (default: the bundled one)")
    vr.add_argument("--out")
    vr.add_argument("--methods", nargs="+", default=list(REPORT_METHODS),
                    choices=REPORT_METHODS)
    vr.add_argument("--time-on", nargs="*", default=["longyearbyen_1995_20m_xdem.tif"],
                    help="DEMs (shared data) on which to time UNCERTAINTY too")
    a = ap.parse_args()
    if a.command == "voids":
        {"fit": void_fit, "report": void_report}[a.voids](a)
        return
    {"fit": fit, "report": report, "tta": tta}[a.command](a)


if __name__ == "__main__":
    main()
