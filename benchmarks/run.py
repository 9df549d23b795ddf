"""`make bench`: speed and peak memory of the plugin next to GDAL, in the same run.

Machines are noisy, so every figure is a ratio to a reference measured in the same
invocation: demsr:superresolve (through qgis_process, as users run it) against
`gdalwarp -r lanczos` on the same input and output grid, and demsr:voidrepair (each METHOD)
against QGIS's own Fill nodata (`gdal:fillnodata`), both through qgis_process. A case with a
target runs REPEATS times (ours, then GDAL, each time) and reports the median ratio and all
of them.

    python benchmarks/run.py [--cases NAME ...]   (default: all; --list names them)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parent.parent
DEMS = ROOT.parent / "shared" / "data" / "dems"
WORK = ROOT / "build" / "bench"
QGIS_PROCESS = str(ROOT / "scripts" / "qgis_process")
REPEATS = 3  # runs of each case that has a target: the median ratio is the figure


def mosaic(path: Path, size: int, source: str = "demcompare_srtm_ref_3arcsec_turkey.tif") -> Path:
    """A size² raster of real terrain: a real DEM repeated with mirror flips (continuous
    across the joins), written in strips so building it needs little memory."""
    if path.exists():
        return path
    with rasterio.open(DEMS / source) as ds:
        z = ds.read(1).astype(np.float32)
        res = ds.res[0] * 111_000.0 if ds.crs and ds.crs.is_geographic else ds.res[0]
    tile = np.block([[z, z[:, ::-1]], [z[::-1, :], z[::-1, ::-1]]])
    reps = -(-size // tile.shape[1])
    row = np.tile(tile, (1, reps))[:, :size]
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32",
                   crs="EPSG:32636", transform=rasterio.Affine(res, 0, 500000, 0, -res, 4500000),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=3,
                   BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as out:
        for row0 in range(0, size, tile.shape[0]):
            rows = min(tile.shape[0], size - row0)
            out.write(row[:rows], 1, window=Window(0, row0, size, rows))
    tmp.rename(path)
    return path


def _res(path: Path) -> float:
    with rasterio.open(path) as ds:
        return ds.res[0]


def measure(cmd: list[str], backend: str = "") -> dict:
    """Wall time and peak RSS of a command (its own process tree), in a fresh child;
    `backend` 'torch' or 'onnx' forces that runtime (DEMSR_BACKEND, core/backends.py)."""
    probe = ("import json,resource,subprocess,sys,time; t=time.perf_counter(); "
             "rc=subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
             "u=resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(json.dumps({'rc': rc, 'seconds': time.perf_counter()-t, "
             "'cpu_seconds': u.ru_utime + u.ru_stime, 'peak_rss_mb': u.ru_maxrss/1024}))")
    env = {k: v for k, v in os.environ.items() if k != "QGIS_CUSTOM_CONFIG_PATH"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.pop("DEMSR_BACKEND", None)
    if backend:
        env["DEMSR_BACKEND"] = backend
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                         env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {result['rc']}")
    return result


def _row(label: str, mpx: float, ours: dict, gdal: dict) -> dict:
    """One case's figures: throughput and peak memory of both, and the time ratio."""
    return dict(case=label, output_mpx=round(mpx, 1),
                ours_mpx_s=round(mpx / ours["seconds"], 2),
                ours_peak_rss_mb=round(ours["peak_rss_mb"]),
                gdal_mpx_s=round(mpx / gdal["seconds"], 2),
                gdal_peak_rss_mb=round(gdal["peak_rss_mb"]),
                time_ratio=round(ours["seconds"] / gdal["seconds"], 2),
                # CPU time (all threads): less sensitive to other load than wall time
                cpu_ratio=round(ours["cpu_seconds"] / gdal["cpu_seconds"], 2))


def superresolve_vs_gdal(src: Path, scale: float, method: str, label: str,
                         backend: str = "") -> dict:
    """Same output grid for both: round(size × SCALE) pixels over the input's extent."""
    with rasterio.open(src) as ds:
        w, h = round(ds.width * scale), round(ds.height * scale)
    ours = measure([QGIS_PROCESS, "run", "demsr:superresolve", "--", f"INPUT={src}",
                    f"SCALE={scale}", f"METHOD={method}", f"OUTPUT={WORK / 'ours.tif'}"],
                   backend)
    gdal = measure(["gdalwarp", "-q", "-overwrite", "-r", "lanczos", "-ts", str(w), str(h),
                    "-ot", "Float32", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE",
                    "-co", "PREDICTOR=3", "-co", "BIGTIFF=IF_SAFER", str(src),
                    str(WORK / "gdal.tif")])
    for f in ("ours.tif", "gdal.tif"):
        (WORK / f).unlink(missing_ok=True)
    return _row(label, w * h / 1e6, ours, gdal)


def first_tile(src: Path, label: str) -> dict:
    """From `qgis_process run` to the first tile, ONNX Runtime against PyTorch: a ×2 run
    whose output is one 1024² tile (512² input), so the run is start-up, model load and that
    tile (the 'gdal' columns hold the PyTorch run; the ratio is ONNX Runtime / PyTorch)."""
    runs = {}
    for backend in ("onnx", "torch"):
        runs[backend] = measure([QGIS_PROCESS, "run", "demsr:superresolve", "--",
                                 f"INPUT={src}", "SCALE=2", "METHOD=model",
                                 f"OUTPUT={WORK / 'ours.tif'}"], backend)
        (WORK / "ours.tif").unlink(missing_ok=True)
    row = _row(label, 1024 * 1024 / 1e6, runs["onnx"], runs["torch"])
    row["seconds_saved"] = round(runs["torch"]["seconds"] - runs["onnx"]["seconds"], 2)
    return row


def _synthetic():
    """core.nodata.synthetic of the checkout (installed in the venv by `make venv`)."""
    from demsr.core.nodata import synthetic

    return synthetic


def holed(src: Path, path: Path, coverage: float = 0.08, seed: int = 2026) -> Path:
    """A copy of `src` with seeded radar-like synthetic voids (nodata -32768)."""
    if path.exists():
        return path
    synthetic_voids = _synthetic().synthetic_voids
    with rasterio.open(src) as ds:
        z = ds.read(1).astype(np.float32)
        profile = ds.profile
    z[synthetic_voids(z, np.random.default_rng(seed), coverage=coverage)] = -32768
    profile.update(nodata=-32768)
    with rasterio.open(path, "w", **profile) as out:
        out.write(z, 1)
    return path


def tiled(src: Path, path: Path, n: int) -> Path:
    """`src` repeated n × n times (drawing voids on a large raster takes long), written in
    strips; same pixel size and nodata."""
    if path.exists():
        return path
    with rasterio.open(src) as ds:
        z = ds.read(1)
        profile = dict(ds.profile)
    h, w = z.shape
    row = np.tile(z, (1, n))
    profile.update(width=w * n, height=h * n, tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", predictor=3, BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as out:
        for k in range(n):
            out.write(row, 1, window=Window(0, k * h, w * n, h))
    tmp.rename(path)
    return path


def auxiliary_for(src: Path, path: Path, seed: int = 7) -> Path:
    """A second DEM of `src`'s area as the quality tables use it (core.nodata.synthetic:
    area-averaged ×4, 1 % smooth error, 2 % bias, quarter-cell shift), on its own grid."""
    if path.exists():
        return path
    synthetic_auxiliary = _synthetic().synthetic_auxiliary
    with rasterio.open(src) as ds:
        z = ds.read(1).astype(np.float32)
        profile, t = ds.profile, ds.transform
    aux, (f, ro, co) = synthetic_auxiliary(z, np.random.default_rng(seed))
    profile.update(width=aux.shape[1], height=aux.shape[0], nodata=-32768,
                   transform=t * t.translation(co, ro) * t.scale(f))
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.where(np.isfinite(aux), aux, -32768).astype(np.float32), 1)
    return path


def voidrepair_vs_gdal(src: Path, label: str, method: str, aux: Path | None = None,
                       extra: tuple = ()) -> dict:
    """demsr:voidrepair METHOD=… against QGIS's own gdal:fillnodata (256 px), both through
    qgis_process as a QGIS user runs them."""
    with rasterio.open(src) as ds:
        mpx = ds.width * ds.height / 1e6
    ours = measure([QGIS_PROCESS, "run", "demsr:voidrepair", "--", f"INPUT={src}",
                    f"METHOD={method}", *([f"AUXILIARY={aux}"] if aux else []), *extra,
                    f"OUTPUT={WORK / 'ours.tif'}", f"FILLED_MASK={WORK / 'mask.tif'}"])
    gdal = measure([QGIS_PROCESS, "run", "gdal:fillnodata", "--", f"INPUT={src}", "BAND=1",
                    "DISTANCE=256", f"OUTPUT={WORK / 'gdal.tif'}"])
    for f in ("ours.tif", "mask.tif", "gdal.tif", "unc.tif"):
        (WORK / f).unlink(missing_ok=True)
    return _row(label, mpx, ours, gdal)


# name → (label, target time ratio or None, how to run it)
def _cases() -> dict:
    mid = lambda: mosaic(WORK / "mosaic_2000.tif", 2000)  # noqa: E731
    big = lambda: mosaic(WORK / "mosaic_8000.tif", 8000)  # noqa: E731
    small = lambda: mosaic(WORK / "mosaic_512.tif", 512)  # noqa: E731
    sr = lambda path, scale, method, label, backend="": (  # noqa: E731
        lambda: superresolve_vs_gdal(path(), scale, method, label, backend))
    holed_1 = lambda: holed(mid(), WORK / "holed_2000_1pct.tif", coverage=0.01)  # noqa: E731
    aux_2000 = lambda: auxiliary_for(mid(), WORK / "aux_2000.tif")  # noqa: E731
    vr = lambda method, label, aux=None, extra=(): (  # noqa: E731
        lambda: voidrepair_vs_gdal(holed_1(), label, method, aux() if aux else None, extra))
    sigma = (f"UNCERTAINTY={WORK / 'unc.tif'}",)
    # the memory case: an 8000² DEM with 1 % voids onto a 10400² grid (fill, then the bundled
    # ×1.3 model through Super-resolve DEM's engine); the row's RSS is the figure
    big_fill = lambda: voidrepair_vs_gdal(  # noqa: E731
        tiled(holed_1(), WORK / "holed_8000_1pct.tif", 4),
        "8000² fill → 10400²", "fill", extra=(f"TARGET_RESOLUTION={_res(big()) / 1.3}",))
    return {
        "sr-lanczos-8000": ("8000² ×2 lanczos", None, sr(big, 2, "lanczos", "8000² ×2 lanczos")),
        "sr-model-x2": ("2000² ×2 model", 3.0, sr(mid, 2, "model", "2000² ×2 model")),
        "sr-model-x1.5625": ("2000² ×1.5625 model", 3.0,
                             sr(mid, 1.5625, "model", "2000² ×1.5625 model")),
        # the bundled blend (two routes averaged, core/pipelines/blend.py)
        "sr-model-x2.5": ("2000² ×2.5 model", None, sr(mid, 2.5, "model", "2000² ×2.5 model")),
        "sr-model-x4": ("2000² ×4 model", None, sr(mid, 4, "model", "2000² ×4 model")),
        # each runtime on its own (the cases above run the default: ONNX Runtime on a CPU
        # when it is installed, core/backends.py)
        "sr-onnx-x2": ("2000² ×2 ONNX Runtime", 1.5,
                       sr(mid, 2, "model", "2000² ×2 ONNX Runtime", "onnx")),
        "sr-onnx-x1.5625": ("2000² ×1.5625 ONNX Runtime", 2.0,
                            sr(mid, 1.5625, "model", "2000² ×1.5625 ONNX Runtime", "onnx")),
        "sr-torch-x2": ("2000² ×2 PyTorch", None,
                        sr(mid, 2, "model", "2000² ×2 PyTorch", "torch")),
        "sr-torch-x1.5625": ("2000² ×1.5625 PyTorch", None,
                             sr(mid, 1.5625, "model", "2000² ×1.5625 PyTorch", "torch")),
        # target: at least 1 s sooner than PyTorch (reported as seconds_saved)
        "first-tile": ("first tile ONNX vs PyTorch", None,
                       lambda: first_tile(small(), "first tile ONNX vs PyTorch")),
        # real SRTM/ALOS voids are usually sparse; gdal:fillnodata through qgis_process
        "voids-fill": ("2000² voids 1 % fill", 1.5, vr("fill", "2000² voids 1 % fill")),
        "voids-delta": ("2000² voids 1 % delta", 2.0,
                        vr("delta", "2000² voids 1 % delta", aux_2000)),
        "voids-model": ("2000² voids 1 % model", 4.0, vr("model", "2000² voids 1 % model")),
        # the same with UNCERTAINTY (σ of each filled cell): its cost is the ratio to the row
        # without it; the run's own targets hold with it
        "voids-delta-sigma": ("2000² voids 1 % delta + σ", 2.0,
                              vr("delta", "2000² voids 1 % delta + σ", aux_2000, sigma)),
        "voids-model-sigma": ("2000² voids 1 % model + σ", 4.0,
                              vr("model", "2000² voids 1 % model + σ", extra=sigma)),
        "voids-fill-8000": ("8000² fill → 10400²", None, big_fill),
    }


def main(argv=None) -> int:
    cases = _cases()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=[*cases, "terrain"],
                    help="run only these cases (default: all, terrain included)")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, (label, target, _) in cases.items():
            print(f"{name:<18} {label}" + (f" (target ≤ {target:g}× GDAL)" if target else ""))
        print(f"{'terrain':<18} all six terrain derivatives of 4000² DEMs")
        return 0
    chosen = args.cases or [*cases, "terrain"]
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in chosen:
        if name == "terrain":
            continue
        label, target, run = cases[name]
        runs = [run() for _ in range(REPEATS if target or name == "first-tile" else 1)]
        runs.sort(key=lambda r: r["time_ratio"])
        row = dict(runs[len(runs) // 2])  # the median run
        if len(runs) > 1:
            row["time_ratios"] = [r["time_ratio"] for r in runs]
            if "seconds_saved" in row:
                row["seconds_saved_runs"] = [r["seconds_saved"] for r in runs]
        row["target_ratio"] = target
        rows.append(row)
        print(rows[-1], flush=True)
    t = None
    if "terrain" in chosen:
        import terrain

        t = terrain.run()
    print(f"\n{'case':<22}{'out Mpx':>9}{'ours Mpx/s':>12}{'ours RSS MB':>12}"
          f"{'gdal Mpx/s':>12}{'gdal RSS MB':>12}{'time ×gdal':>12}{'target':>9}  runs")
    for r in rows:
        target = f"≤{r['target_ratio']:g}" if r["target_ratio"] else ""
        spread = "/".join(f"{v:g}" for v in r.get("time_ratios", []))
        print(f"{r['case']:<22}{r['output_mpx']:>9}{r['ours_mpx_s']:>12}{r['ours_peak_rss_mb']:>12}"
              f"{r['gdal_mpx_s']:>12}{r['gdal_peak_rss_mb']:>12}{r['time_ratio']:>12}{target:>9}"
              f"  {spread}")
    if t is not None:
        print(f"\nTerrain derivatives (all six): {json.dumps(t)}")
    name = "results.json" if args.cases is None else "results_partial.json"
    (WORK / name).write_text(json.dumps({"superresolve": rows, "terrain": t}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
