"""Super-resolve DEM with METHOD=model at any factor against the best classical resampler.

    python scripts/evaluate_factors.py [--factors 1.5625 2 2.5 3 4] [--routes]
        [--model 2:4=build/x4_f2-4.pt] [--out build/factors.md]

For each held-out DEM (scripts/default_data.py VALIDATION) and factor f: LR = the HR DEM on
a grid f times coarser, by block mean at integer factors and by area average (GDAL
'average', partial cells by their overlap) otherwise; the HR DEM is cropped to a whole
number of LR cells first, so the SR output grid is the HR grid. Every method goes through
the same engine (`superresolve`): the model by the engine's own rule (METHOD=model, bundled
models), and GDAL cubic, cubic spline and Lanczos. Ratio = model RMSE / best classical RMSE
for that DEM; slope ratio likewise with the best classical slope RMSE.

--model LO:HI=PATH (repeatable) evaluates a candidate factor-range model as if it were
bundled: "model" then runs PATH at the factors in [LO, HI] that no bundled model of exactly
that scale serves (through the engine, which honours the factors and finish the checkpoint
records), and the bundled rule's figures are kept as the extra route "rule".

--routes also runs every bundled model at every factor it can reach (×s then area average
when s ≥ f, ×s then Lanczos when s < f), to show why the engine's rule is what it is.
"""
import argparse
import math
import os
import sys
import tempfile
from fractions import Fraction

import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from affine import Affine  # noqa: E402
from default_data import CLASSICAL, TERRAIN, VALIDATION, paths  # noqa: E402
from demsr.core.evaluation.metrics import compare  # noqa: E402
from demsr.core.terrain.cellsize import cell_size_m  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.nets import bundled, checkpoint  # noqa: E402
from demsr.core.pipelines import superresolve as engine  # noqa: E402
from demsr.core.pipelines.model_upsampler import FactorModelUpsampler, ModelUpsampler  # noqa: E402
from demsr.core.raster.grid import Grid, grid_factor, grid_ratio  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.raster.warp import area_average  # noqa: E402

ROUTE_FINISHES = ("lanczos", "cubicspline")  # point-sampling finishes tried by --routes
MAX_HR = 600  # HR crop side (pixels): keeps the run short; the same crop for every method


def make_lr(path: str, factor: float, tmp: str):
    """(HR array cropped to whole LR cells, HR grid, LR path)."""
    src = open_dem(path)
    with rasterio.open(path) as ds:
        hr = read_band(ds, 1)
    p = Fraction(factor).limit_denominator(64)
    if abs(float(p) - factor) > 1e-9:
        raise SystemExit(f"factor {factor} is not a ratio of small integers")
    step = p.numerator  # HR pixels per whole number (p.denominator) of LR pixels
    h = (min(hr.shape[0], MAX_HR) // step) * step
    w = (min(hr.shape[1], MAX_HR) // step) * step
    hr = hr[:h, :w]
    t = src.grid.transform
    hr_grid = Grid(t, w, h, src.grid.crs)
    lr_grid = Grid(t * Affine.scale(factor), int(round(w / factor)), int(round(h / factor)),
                   src.grid.crs)
    lr = area_average(np.nan_to_num(hr), t, (lr_grid.height, lr_grid.width), lr_grid.transform)
    bad = area_average(np.isnan(hr).astype(np.float32), t, (lr_grid.height, lr_grid.width),
                       lr_grid.transform)
    lr[bad > 0] = np.nan  # an LR cell touching nodata is nodata
    lr_path = os.path.join(tmp, f"lr_{factor:g}.tif")
    write_array(lr_path, lr, lr_grid)
    return hr, hr_grid, lr_path


def forced(model_path: str, finish=None):
    """build_upsampler that runs model_path at any factor (for --routes)."""
    def build(req, src, dst, monitor):
        ckpt = checkpoint.load(model_path)
        name = os.path.basename(model_path)
        if grid_factor(src.grid, dst) == ckpt.scale:
            return ModelUpsampler(ckpt, "cpu", 1, name)
        return FactorModelUpsampler(ckpt, "cpu", 1, name, src.grid, dst, finish)
    return build


def candidate(models):
    """build_upsampler with candidate factor-range models [(lo, hi, path)] before the rule."""
    def build(req, src, dst, monitor):
        f, exact = grid_ratio(src.grid, dst), grid_factor(src.grid, dst)
        path = None
        if exact not in bundled.sr_scales():
            path = next((p for lo, hi, p in models if lo - 1e-9 <= f <= hi + 1e-9), None)
        return ModelUpsampler.for_grids(path, src.grid, dst, "cpu", 1, monitor)
    return build


def run(lr_path, factor, method, tmp, build=None):
    out = os.path.join(tmp, f"sr_{method}_{factor:g}.tif")
    original = engine.build_upsampler
    if build is not None:
        engine.build_upsampler = build
    try:
        engine.superresolve(engine.SuperResolveRequest(
            lr_path, out, scale=factor, method="model" if build or method == "model" else method,
            device="cpu", tile_size=512), Monitor())
    finally:
        engine.build_upsampler = original
    with rasterio.open(out) as ds:
        return read_band(ds, 1)


def evaluate(path, factor, tmp, routes, models=()):
    hr, grid, lr_path = make_lr(path, factor, tmp)
    b = grid.bounds
    dx, dy = cell_size_m(grid.res, grid.is_geographic, (b[1] + b[3]) / 2)
    res = {}
    methods = {m: None for m in ("model", *CLASSICAL)}
    if models:
        methods["model"] = candidate(models)
        methods["rule"] = None
    if routes:
        for s in bundled.sr_scales():
            methods[f"x{s}"] = forced(bundled.sr_model_path(s))
            if s > factor:
                for fin in ROUTE_FINISHES:
                    methods[f"x{s}+{fin}"] = forced(bundled.sr_model_path(s), fin)
    for method, build in methods.items():
        try:
            pred = run(lr_path, factor, "model" if method == "rule" else method, tmp, build)
        except Exception as exc:  # noqa: BLE001 - a factor the rule refuses
            print(f"  {os.path.basename(path)} ×{factor:g} {method}: {exc}", file=sys.stderr)
            continue
        assert pred.shape == hr.shape, (pred.shape, hr.shape)
        res[method] = compare(pred, hr, dx, dy)
    return res


def gmean(v):
    return math.exp(float(np.mean(np.log(v)))) if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--factors", type=float, nargs="+", default=[1.5625, 2, 2.5, 3, 4])
    ap.add_argument("--routes", action="store_true")
    ap.add_argument("--model", action="append", default=[], metavar="LO:HI=PATH",
                    help="a candidate factor-range model for the factors in [LO, HI]")
    ap.add_argument("--out")
    a = ap.parse_args()
    models = []
    for spec in a.model:
        rng, path = spec.split("=", 1)
        lo, hi = (float(x) for x in rng.split(":"))
        models.append((lo, hi, os.path.abspath(path)))
    lines = ["| DEM | terrain | factor | best classical | RMSE classical (m) | RMSE model (m) | "
             "ratio | slope RMSE classical (°) | slope RMSE model (°) | slope ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    summary, route_lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for f in a.factors:
            er, sr, extra = [], [], {}
            for path in paths(VALIDATION):
                name = os.path.basename(path)
                r = evaluate(path, f, tmp, a.routes, models)
                best = min(CLASSICAL, key=lambda m: r[m].rmse)
                bs = min(r[m].slope_rmse for m in CLASSICAL)
                for k in r:
                    if k.startswith("x") or k == "rule":
                        extra.setdefault(k, []).append((r[k].rmse / r[best].rmse,
                                                        r[k].slope_rmse / bs))
                if "model" not in r:
                    lines.append(f"| {name} | {TERRAIN.get(name, '')} | ×{f:g} | {best} | "
                                 f"{r[best].rmse:.4g} | refused | | {bs:.3g} | | |")
                    print(lines[-1], flush=True)
                    continue
                ratio, sratio = r["model"].rmse / r[best].rmse, r["model"].slope_rmse / bs
                er.append(ratio)
                sr.append(sratio)
                lines.append(f"| {name} | {TERRAIN.get(name, '')} | ×{f:g} | {best} | "
                             f"{r[best].rmse:.4g} | {r['model'].rmse:.4g} | {ratio:.3f} | "
                             f"{bs:.3g} | {r['model'].slope_rmse:.3g} | {sratio:.3f} |")
                print(lines[-1], flush=True)
            if er:
                summary.append(f"×{f:g}: elevation RMSE geometric mean ratio {gmean(er):.3f}, "
                               f"worst DEM {max(er):.3f}; slope geometric mean {gmean(sr):.3f}, "
                               f"worst {max(sr):.3f}")
            else:
                summary.append(f"×{f:g}: no model covers this factor")
            for k, v in extra.items():
                e, s = [x[0] for x in v], [x[1] for x in v]
                via = "the bundled rule" if k == "rule" else f"bundled {k}"
                route_lines.append(f"route ×{f:g} via {via}: elevation gm {gmean(e):.3f} "
                                   f"worst {max(e):.3f}; slope gm {gmean(s):.3f} worst "
                                   f"{max(s):.3f}")
            print(summary[-1], *route_lines[-len(extra):] if extra else [], sep="\n", flush=True)
    text = "\n".join(lines + [""] + summary + ([""] + route_lines if route_lines else [])) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
