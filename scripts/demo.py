"""`make demo`: super-resolve the bundled real DEM with qgis_process, as a user would.

The bundled 10 m DEM is degraded ×2 by block mean (what a coarser survey of the
same ground records), super-resolved back to 10 m through
`qgis_process run demsr:superresolve`, and compared with the original:
elevation and slope RMSE for the learned model and for GDAL's resamplers.
It ends with `qgis_process run demsr:evaluate` (Evaluate DEM) on the model's
result, with the classical baselines made from the same LR input, and prints
the path of its HTML report.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import demsr

ROOT = Path(__file__).resolve().parent.parent

import rasterio  # noqa: E402

from demsr.core.evaluation.metrics import compare  # noqa: E402
from demsr.core.raster.io import read_band  # noqa: E402
from demsr.core.raster.degrade import degrade_raster  # noqa: E402

DEM = Path(demsr.__file__).parent / "resources" / "demo" / "lidar_1m.tif"
OUT = ROOT / "build" / "demo"
SCALE = 2
METHODS = ("model", "lanczos", "cubicspline", "cubic")


def qgis_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / "qgis_process"), *args],
                          capture_output=True, text=True)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    lr = OUT / "lidar_2m_blockmean.tif"
    src, hr = degrade_raster(str(DEM), str(lr), SCALE, "blockmean")
    dx, dy = src.grid.res
    print(f"Input: {lr} (2 m, block mean of {DEM.name}: 1 m lidar, MIT, held out of training)")
    rows = []
    for method in METHODS:
        out = OUT / f"lidar_1m_{method}.tif"
        proc = qgis_process("run", "demsr:superresolve", "--", f"INPUT={lr}",
                            f"SCALE={SCALE}", f"METHOD={method}", f"OUTPUT={out}")
        if proc.returncode != 0:
            print(f"qgis_process failed for METHOD={method}:\n{proc.stdout[-3000:]}"
                  f"{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        with rasterio.open(out) as ds:
            pred = read_band(ds, 1)
        e = compare(pred, hr, dx, dy)
        rows.append((method, e.rmse, e.slope_rmse, out))
    best = min((r for r in rows if r[0] != "model"), key=lambda r: r[1])
    print(f"\nSuper-resolved ×{SCALE} with qgis_process run demsr:superresolve "
          "(errors against the original 1 m DEM):\n")
    print(f"{'method':<12} {'elev. RMSE (m)':>15} {'slope RMSE (°)':>15} "
          f"{'vs best GDAL':>13}  output")
    for method, rmse, srmse, out in rows:
        print(f"{method:<12} {rmse:>15.3f} {srmse:>15.3f} {rmse / best[1]:>12.2f}×  {out}")
    model = rows[0]
    if model[1] > best[1]:
        print(f"\nThe bundled model's elevation RMSE is {model[1] / best[1]:.2f}× GDAL {best[0]}'s "
              "on this lidar DEM: a known defect of the current bundled models (README, "
              "'Known defect')"
              + ("; its slope error is lower." if model[2] < best[2] else "."))
    return evaluate_report(rows[0][3], lr)


def evaluate_report(result, lr) -> int:
    """Evaluate DEM on the model's result: metrics, pictures and the classical baselines."""
    html = OUT / "evaluation.html"
    proc = qgis_process("--json", "run", "demsr:evaluate", "--", f"INPUT={result}",
                        f"REFERENCE={DEM}", "COMPARE_CLASSICAL=true", f"LOW_RES={lr}",
                        f"OUTPUT_HTML={html}", f"OUTPUT_TABLE={OUT / 'evaluation.csv'}",
                        f"OUTPUT_ERROR={OUT / 'evaluation_error.tif'}")
    if proc.returncode != 0:
        print(f"qgis_process failed for demsr:evaluate:\n{proc.stdout[-3000:]}"
              f"{proc.stderr[-3000:]}", file=sys.stderr)
        return 1
    r = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    print(f"\nEvaluate DEM (qgis_process run demsr:evaluate) on the model's result: "
          f"RMSE {r['RMSE']:.3f} m, bias {r['BIAS']:+.3f} m, P95 {r['P95']:.3f} m, slope RMSE "
          f"{r['SLOPE_RMSE']:.2f}°, SSIM {r['SSIM']:.4f}, streams reproduced "
          f"{r['STREAM_RECALL']:.0%}, real {r['STREAM_PRECISION']:.0%}; GDAL Lanczos, cubic "
          f"and cubic spline from the same input side by side in {OUT / 'evaluation.csv'}.")
    print(f"Report (open in a browser): {r['OUTPUT_HTML']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
