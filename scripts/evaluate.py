"""Bundled (or given) models against the best classical resampler on the held-out DEMs.

    python scripts/evaluate.py [--scales 2 4] [--model-x2 PATH] [--speed DEM] [--out build/eval.md]

For each validation DEM: LR = block mean of the HR DEM; every method goes
through the same engine (`superresolve`), and the model is compared with
the best of GDAL cubic / cubic spline / Lanczos for that DEM. "Lanczos+BP"
is FastSR with no network (Lanczos + block-mean back-projection), to show
what the trained part adds. Prints the
markdown table for the README. --speed times ×2 model vs `gdalwarp -r lanczos`.
"""
import argparse
import math
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from default_data import CLASSICAL, TERRAIN, VALIDATION, paths  # noqa: E402
from demsr.core.evaluation.metrics import compare  # noqa: E402
from demsr.core.terrain.cellsize import cell_size_m  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.degrade import degrade_raster  # noqa: E402



def classical_backprojection_model(scale, tmp):
    """FastSR with its residual at zero = Lanczos + block-mean back-projection, no network."""
    from demsr.core.nets import checkpoint, registry

    path = os.path.join(tmp, f"bp_x{scale}.pt")
    checkpoint.save(checkpoint.from_model(registry.build("fast", scale), "lanczos+backprojection",
                                          {"note": "untrained: the classical part only"}), path)
    return path


def evaluate_dem(path, scale, model_path, tmp):
    lr_path = os.path.join(tmp, f"lr_{scale}.tif")
    src, hr = degrade_raster(path, lr_path, scale, "blockmean")
    b = src.grid.bounds
    dx, dy = cell_size_m(src.grid.res, src.grid.is_geographic, (b[1] + b[3]) / 2)
    res = {}
    for method in ("model", "bp", *CLASSICAL):
        out = os.path.join(tmp, f"sr_{method}_{scale}.tif")
        model = {"model": model_path, "bp": classical_backprojection_model(scale, tmp)}
        superresolve(SuperResolveRequest(lr_path, out, scale=scale,
                                         method="model" if method in model else method,
                                         model_path=model.get(method), tile_size=512))
        with rasterio.open(out) as ds:
            pred = read_band(ds, 1)
        assert pred.shape == hr.shape, (pred.shape, hr.shape)
        res[method] = compare(pred, hr, dx, dy)
    return res


def speed(dem, model_path, tmp, repeats=3):
    out_l, out_m = os.path.join(tmp, "lz.tif"), os.path.join(tmp, "m.tif")
    src = open_dem(dem)
    size = ["-ts", str(src.grid.width * 2), str(src.grid.height * 2)]
    tl, tm = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(["gdalwarp", "-q", "-overwrite", "-r", "lanczos", *size, dem, out_l],
                       check=True)
        tl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        superresolve(SuperResolveRequest(dem, out_m, scale=2, method="model",
                                         model_path=model_path, device="cpu"))
        tm.append(time.perf_counter() - t0)
    return min(tl), min(tm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--model-x2")
    ap.add_argument("--model-x4")
    ap.add_argument("--speed")
    ap.add_argument("--out")
    a = ap.parse_args()
    models = {2: a.model_x2, 4: a.model_x4}
    lines = ["| DEM | terrain | scale | best classical | RMSE classical (m) | RMSE model (m) | "
             "ratio | Lanczos+BP ratio | slope RMSE classical (°) | slope RMSE model (°) | "
             "slope ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in a.scales:
            er, sr, worst = [], [], 0.0
            for path in paths(VALIDATION):
                r = evaluate_dem(path, scale, models.get(scale), tmp)
                best = min(CLASSICAL, key=lambda m: r[m].rmse)
                bs = min(r[m].slope_rmse for m in CLASSICAL)
                ratio, sratio = r["model"].rmse / r[best].rmse, r["model"].slope_rmse / bs
                er.append(ratio)
                sr.append(sratio)
                worst = max(worst, ratio)
                name = os.path.basename(path)
                lines.append(f"| {name} | {TERRAIN.get(name, '')}"
                             f" | ×{scale} | {best} | {r[best].rmse:.4g} | {r['model'].rmse:.4g} | "
                             f"{ratio:.3f} | {r['bp'].rmse / r[best].rmse:.3f} | {bs:.3g} | "
                             f"{r['model'].slope_rmse:.3g} | {sratio:.3f} |")
                print(lines[-1], flush=True)
            gm = lambda v: math.exp(np.mean(np.log(v)))  # noqa: E731
            summary.append(f"×{scale}: elevation RMSE geometric mean ratio {gm(er):.3f} "
                           f"(target ≤ 0.85), slope {gm(sr):.3f} (target ≤ 0.9), worst DEM "
                           f"{worst:.3f} (must be < 1)")
        if a.speed:
            tl, tm = speed(a.speed, models.get(2), tmp)
            summary.append(f"speed ×2 on {os.path.basename(a.speed)}: gdalwarp -r lanczos "
                           f"{tl:.2f} s, model (engine, CPU) {tm:.2f} s, ratio {tm / tl:.1f}×")
    text = "\n".join(lines + [""] + summary) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
