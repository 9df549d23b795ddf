"""Void repair/SR (DS-HAT) against what a QGIS user has today, on the held-out DEMs.

    python scripts/evaluate_voids.py [--model PATH] [--factors 1 2] [--out build/voids.md]

For each validation DEM (scripts/default_data.py) and factor:
- ×1 (void repair on the DEM's own grid): synthetic radar-like voids (seeded,
  5–60 px, ~8 % of the cells) are cut into the DEM;
- ×2 (void repair + SR): the LR DEM is the block mean ×2 of the DEM, the voids
  are cut into the LR DEM, and the DEM's own grid is the TARGET_GRID.
Baselines go through the same code a user would run: GDAL FillNodata
(core.voids.filled_source, what `gdal:fillnodata` does, 256 px search) on the
holed input, then for ×2 the Super-resolve engine with GDAL cubic, cubic
spline and Lanczos (the best of the three per DEM and region). DS-HAT runs
through core.voidrepair.voidrepair as demsr:voidrepair does. RMSE in metres
inside voids (pixels of FILLED_MASK) and outside voids. Prints a markdown table.
"""
import argparse
import math
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from working_tree import use_working_tree  # noqa: E402

use_working_tree()

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from default_data import CLASSICAL, TERRAIN, VALIDATION, paths  # noqa: E402
from demsr.core.grid import Grid  # noqa: E402
from demsr.core.inpaint import inpaint  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.raster_io import open_dem, read_band, write_array  # noqa: E402
from demsr.core.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.training.degrade import degrade_array  # noqa: E402
from demsr.core.training.synthetic_voids import synthetic_voids  # noqa: E402
from demsr.core.voidrepair import VoidRepairRequest, voidrepair  # noqa: E402
from demsr.core.voids import filled_source  # noqa: E402

SEED, COVERAGE = 2026, 0.08


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def _rmse(pred, ref, where):
    ok = where & np.isfinite(ref) & np.isfinite(pred)
    if where.any() and not np.isfinite(pred[where & np.isfinite(ref)]).all():
        return math.inf  # a pixel that should be filled is nodata
    return float(np.sqrt(np.mean((pred[ok].astype(np.float64) - ref[ok]) ** 2)))


def evaluate(path, factor, model, tmp):
    src = open_dem(path)
    hr = _read(path)
    f = int(factor)
    h, w = (hr.shape[0] // f) * f, (hr.shape[1] // f) * f
    hr = hr[:h, :w]
    hgrid = Grid(src.grid.transform, w, h, src.grid.crs)
    ref_path = os.path.join(tmp, "ref.tif")
    write_array(ref_path, hr, hgrid)
    if f == 1:
        lr, lgrid = hr.copy(), hgrid
    else:
        lr = degrade_array(hr, f, "blockmean")
        lgrid = Grid(hgrid.transform * hgrid.transform.scale(f), w // f, h // f, hgrid.crs)
    holes = synthetic_voids(lr, np.random.default_rng(SEED), coverage=COVERAGE)
    lr[holes] = np.nan
    lr_path = os.path.join(tmp, "lr.tif")
    write_array(lr_path, lr, lgrid)
    out, mask_path = os.path.join(tmp, "out.tif"), os.path.join(tmp, "mask.tif")
    voidrepair(VoidRepairRequest(lr_path, out, mask_path, target_grid_path=ref_path if f > 1
                                 else None, model_path=model, device="cpu"))
    pred, filled = _read(out), _read(mask_path) == 1
    voids, outside = filled, ~filled & np.isfinite(hr)
    # the user's way: gdal:fillnodata, then (×2) a classical resampler
    with filled_source(open_dem(lr_path), os.path.join(tmp, "x.tif"), Monitor()) as fs:
        gfill = _read(fs.path)
        write_array(os.path.join(tmp, "gfill.tif"), gfill, lgrid)
    first = inpaint(lr, holes)
    base = {}
    if f == 1:
        base["fillnodata"] = (gfill, "—")
        outside_best = ("kept", _rmse(lr, hr, outside))
        first_rmse = _rmse(first, hr, voids)
    else:
        cand = {}
        for m in CLASSICAL:
            o = os.path.join(tmp, f"c_{m}.tif")
            superresolve(SuperResolveRequest(os.path.join(tmp, "gfill.tif"), o, scale=f,
                                             method=m))
            cand[m] = _read(o)
        bm = min(CLASSICAL, key=lambda m: _rmse(cand[m], hr, voids))
        base["fillnodata"] = (cand[bm], bm)
        om = min(CLASSICAL, key=lambda m: _rmse(cand[m], hr, outside))
        outside_best = (om, _rmse(cand[om], hr, outside))
        write_array(os.path.join(tmp, "first.tif"), first, lgrid)
        o = os.path.join(tmp, "first_sr.tif")
        superresolve(SuperResolveRequest(os.path.join(tmp, "first.tif"), o, scale=f,
                                         method="lanczos"))
        first_rmse = _rmse(_read(o), hr, voids)
    g, gm = base["fillnodata"]
    return dict(void_px=int(voids.sum()), fill=_rmse(g, hr, voids), fill_method=gm,
                first=first_rmse, model=_rmse(pred, hr, voids), out_method=outside_best[0],
                out_base=outside_best[1], out_model=_rmse(pred, hr, outside),
                holes_ok=bool(voids.sum() > 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="DS-HAT checkpoint; default: the bundled one")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out")
    a = ap.parse_args()
    lines = ["| DEM | terrain | factor | void px | RMSE in voids: gdal:fillnodata (+ resampler) | "
             "biharmonic first fill | DS-HAT | ratio DS-HAT / fillnodata | RMSE outside voids: "
             "best classical | DS-HAT | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios, out_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in a.factors:
            for path in paths(VALIDATION):
                r = evaluate(path, factor, a.model, tmp)
                ratio = r["model"] / r["fill"]
                oratio = r["out_model"] / r["out_base"] if r["out_base"] > 0 else 1.0
                ratios.append(ratio)
                if factor > 1:
                    out_ratios.append(oratio)
                fm = "" if r["fill_method"] == "—" else f" (+{r['fill_method']})"
                lines.append(
                    f"| {os.path.basename(path)} | {TERRAIN.get(os.path.basename(path), '')} | "
                    f"×{factor} | {r['void_px']} | {r['fill']:.4g}{fm} | {r['first']:.4g} | "
                    f"{r['model']:.4g} | {ratio:.3f} | "
                    + (f"input kept | input kept | 1 |" if factor == 1 else
                       f"{r['out_base']:.4g} ({r['out_method']}) | {r['out_model']:.4g} | "
                       f"{oratio:.3f} |"))
                print(lines[-1], flush=True)
    gmean = lambda v: math.exp(np.mean(np.log(v)))  # noqa: E731
    summary = [f"In voids: geometric mean ratio DS-HAT / gdal:fillnodata {gmean(ratios):.3f}, "
               f"worst {max(ratios):.3f} (target ≤ 0.7 on every DEM)."]
    if out_ratios:
        summary.append(f"Outside voids (×2): geometric mean ratio DS-HAT / best classical "
                       f"{gmean(out_ratios):.3f}, worst {max(out_ratios):.3f} (target ≤ 1).")
    text = "\n".join(lines + [""] + summary) + "\n"
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
