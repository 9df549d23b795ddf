"""`make gpu-check`: the CUDA paths on one GPU, in under 5 minutes; fails loudly.

1. Super-resolve DEM ×2 with the bundled model on a 4096² real-terrain input: output Mpx/s
   of the engine alone (tiles in memory, no file I/O) on the GPU and on the CPU, their
   ratio, peak GPU memory; the whole run (files included) on GPU and CPU, whose outputs
   must agree within 1e-3 m. Target: ≥ 100 Mpx/s on one H100-class GPU.
2. Void repair (bundled DS-HAT) of a DEM with synthetic voids, on GPU and CPU.
3. 20 training steps of each architecture on the GPU (automatic mixed precision).
4. Out of memory: a batch of tiles sized to need about twice the GPU's memory must halve
   (ModelUpsampler's back-off) and give the batch-1 results.

`--cpu-smoke` runs the same code on the CPU with tiny sizes (the out-of-memory error is then
injected, as a GPU would raise it) so that this script cannot rot: a test runs it. Without
a CUDA device and without --cpu-smoke it says "no CUDA device" and exits 2.
Input terrain: resources/demo/lidar_1m.tif mirrored (in the repository, no other data).
Results: build/gpu_check/result.json.
"""
import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import rasterio

import demsr

ROOT = Path(__file__).resolve().parent.parent

from demsr.core.devices import select_device  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.raster.grid import Grid, output_grid  # noqa: E402
from demsr.core.raster.io import open_dem, read_band, read_window  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.raster.tiles import batches, plan_tiles  # noqa: E402

DEMO = Path(demsr.__file__).parent / "resources" / "demo" / "lidar_1m.tif"
SIZES = {  # full check on a GPU / smoke on the CPU
    "sr": (4096, 160), "void": (1024, 128), "train_dem": (512, 160), "steps": (20, 3),
    "tile": (1024, 128), "batch": (4, 2)}
SR_TOLERANCE_M = 1e-3
TARGET_MPX_S = 100.0


def terrain(path: str, size: int, voids: float = 0.0, seed: int = 0) -> str:
    """A size² DEM of real terrain (the demo lidar mirrored), optionally with voids."""
    with rasterio.open(DEMO) as ds:
        z, t, crs = read_band(ds, 1), ds.transform, ds.crs
    tile = np.block([[z, z[:, ::-1]], [z[::-1, :], z[::-1, ::-1]]])
    reps = -(-size // tile.shape[0])
    dem = np.tile(tile, (reps, reps))[:size, :size].copy()
    if voids:
        from demsr.core.nodata.synthetic import synthetic_voids

        dem[synthetic_voids(dem, np.random.default_rng(seed), coverage=voids)] = np.nan
    write_array(path, dem, Grid(t, size, size, crs))
    return path


def sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def engine_speed(path: str, device: str, tile: int, batch: int, torch) -> dict:
    """Output Mpx/s of the bundled ×2 model over every tile of `path`, inputs in memory."""
    from demsr.core.pipelines.model_upsampler import ModelUpsampler
    from demsr.core.pipelines.upsamplers import TileInput

    src = open_dem(path)
    dst = output_grid(src.grid, 2.0)
    up = ModelUpsampler.for_grids(None, src.grid, dst, device, batch, Monitor())
    tiles = plan_tiles(src.grid, dst, tile, up.halo)
    with rasterio.open(path) as ds:
        inputs = [TileInput(read_window(ds, 1, t.src_row0, t.src_col0, t.src_height,
                                        t.src_width, pad_edge=True), t.src_row0, t.src_col0)
                  for t in tiles]
    up.upsample(inputs[:batch], tiles[:batch])  # warm-up (cuDNN autotune, allocations)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(torch, device)
    t0 = time.perf_counter()
    for group in batches(list(range(len(tiles))), batch):
        up.upsample([inputs[k] for k in group], [tiles[k] for k in group])
    sync(torch, device)
    seconds = time.perf_counter() - t0
    out = dict(device=device, output_mpx=dst.width * dst.height / 1e6, seconds=seconds,
               mpx_s=dst.width * dst.height / 1e6 / seconds, tile=tile, batch=batch)
    if device.startswith("cuda"):
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def superresolve_check(work: str, device: str, smoke: bool, torch) -> dict:
    from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

    size, tile, batch = SIZES["sr"][smoke], SIZES["tile"][smoke], SIZES["batch"][smoke]
    path = terrain(os.path.join(work, "sr_in.tif"), size)
    res = dict(input=f"{size}×{size}", gpu=engine_speed(path, device, tile, batch, torch),
               cpu=engine_speed(path, "cpu", tile, batch, torch))
    res["speed_ratio"] = res["gpu"]["mpx_s"] / res["cpu"]["mpx_s"]
    runs = {}
    for dev in (device, "cpu"):
        out = os.path.join(work, f"sr_{dev.replace(':', '')}.tif")
        t0 = time.perf_counter()
        superresolve(SuperResolveRequest(path, out, method="model", device=dev, tile_size=tile,
                                         batch_size=batch))
        with rasterio.open(out) as ds:
            runs[dev] = (read_band(ds, 1), time.perf_counter() - t0)
    a, b = runs[device][0], runs["cpu"][0]
    res["whole_run_seconds"] = {device: runs[device][1], "cpu": runs["cpu"][1]}
    res["max_abs_diff_m"] = float(np.nanmax(np.abs(a - b)))
    res["same_nodata"] = bool((np.isnan(a) == np.isnan(b)).all())
    if not res["same_nodata"] or not res["max_abs_diff_m"] <= SR_TOLERANCE_M:
        raise AssertionError(f"Super-resolve on {device} differs from the CPU by "
                             f"{res['max_abs_diff_m']:.3g} m (tolerance {SR_TOLERANCE_M} m)")
    return res


def voidrepair_check(work: str, device: str, smoke: bool) -> dict:
    from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair

    size = SIZES["void"][smoke]
    path = terrain(os.path.join(work, "void_in.tif"), size, voids=0.05, seed=1)
    with rasterio.open(path) as ds:
        holes = np.isnan(read_band(ds, 1))
    out = {}
    for dev in (device, "cpu"):
        dem, mask = (os.path.join(work, f"void_{dev.replace(':', '')}{s}.tif")
                     for s in ("", "_mask"))
        r = voidrepair(VoidRepairRequest(path, dem, mask, device=dev, method="model"))
        with rasterio.open(dem) as ds:
            out[dev] = (read_band(ds, 1), r)
    filled, res_dev = out[device]
    if np.isnan(filled[holes]).any():
        raise AssertionError("Void repair left voids unfilled")
    diff = float(np.abs(filled - out["cpu"][0])[holes].max())
    return dict(input=f"{size}×{size}", void_pixels=int(holes.sum()),
                seconds={device: res_dev.seconds, "cpu": out["cpu"][1].seconds},
                max_abs_diff_in_voids_m=diff, device_used=res_dev.device)


def training_check(work: str, device: str, smoke: bool) -> dict:
    from demsr.core.training.tasks import ARCHITECTURES, config_for
    from demsr.core.training.train import run_training

    dem = terrain(os.path.join(work, "train.tif"), SIZES["train_dem"][smoke])
    steps = SIZES["steps"][smoke]
    tiny = {"fast": {"channels": 8, "blocks": 1}, "gisr": {"channels": 8, "blocks": 1},
            "dshat": {"features": 8, "growth": 4, "blocks": 1, "dense_blocks": 2, "convs": 2,
                      "support_features": 8, "se_blocks": 1, "se_radius": 3,
                      "elev_radius": 2}}
    out = {}
    for arch in ARCHITECTURES:
        shared = dict(inputs=[dem], output_model=os.path.join(work, f"train_{arch}.pt"),
                      epochs=1, steps_per_epoch=steps, validation=0.2, device=device,
                      resume=False, hparams=tiny[arch] if smoke else {},
                      batch_size=2 if smoke else 16, patch_size=32 if smoke else 64)
        cfg = config_for(arch, dict(shared, architecture=arch, scale=2))
        t0 = time.perf_counter()
        r = run_training(cfg)
        loss = r.history[-1]["train_loss"]
        if r.epochs_done != 1 or not math.isfinite(loss):
            raise AssertionError(f"Training {arch} on {device} did not finish with a finite "
                                 f"loss ({loss})")
        out[arch] = dict(steps=steps, seconds=time.perf_counter() - t0, train_loss=loss,
                         amp=device.startswith("cuda"))
    return out


def oom_check(work: str, device: str, smoke: bool, torch) -> dict:
    """A batch too large for the device must halve and give the batch-1 results."""
    from demsr.core.pipelines.model_upsampler import ModelUpsampler
    from demsr.core.pipelines.upsamplers import TileInput

    size, tile = SIZES["sr"][smoke] // 2, SIZES["tile"][smoke]
    path = terrain(os.path.join(work, "oom_in.tif"), max(size, 2 * tile))
    src = open_dem(path)
    dst = output_grid(src.grid, 2.0)
    up = ModelUpsampler.for_grids(None, src.grid, dst, device, 1, Monitor())
    tiles = plan_tiles(src.grid, dst, tile, up.halo)[:4]
    with rasterio.open(path) as ds:
        inputs = [TileInput(read_window(ds, 1, t.src_row0, t.src_col0, t.src_height,
                                        t.src_width, pad_edge=True), t.src_row0, t.src_col0)
                  for t in tiles]
    reference = up.upsample(inputs, tiles)  # one tile per call
    if smoke:  # the error a GPU raises, injected while a call holds more than 2 tiles
        n, real_run, raised = 16, up._run, []

        def limited(batch):
            if len(batch) > 2:
                raised.append(len(batch))
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB "
                                   "(simulated by gpu_check --cpu-smoke)")
            return real_run(batch)

        up._run = limited
    else:  # enough tiles to need about twice the GPU's memory in one call
        torch.cuda.reset_peak_memory_stats()
        up.upsample(inputs[:1], tiles[:1])
        per_tile = torch.cuda.max_memory_allocated()
        total = torch.cuda.get_device_properties(0).total_memory
        n = min(2048, math.ceil(2 * total / per_tile))
    up.batch_size = n
    many_in = [inputs[k % len(inputs)] for k in range(n)]
    many_tiles = [tiles[k % len(tiles)] for k in range(n)]
    t0 = time.perf_counter()
    got = up.upsample(many_in, many_tiles)
    seconds = time.perf_counter() - t0
    if up.batch_size >= n:
        raise AssertionError(f"A batch of {n} tiles ran without an out-of-memory error: the "
                             "halving was not exercised")
    diff = max(float(np.nanmax(np.abs(g - reference[k % len(reference)])))
               for k, g in enumerate(got))
    if not diff <= SR_TOLERANCE_M:
        raise AssertionError(f"After halving, results differ by {diff:.3g} m from batch 1")
    return dict(batch_asked=n, batch_after_halving=up.batch_size, seconds=seconds,
                max_abs_diff_m=diff, simulated=smoke)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="the same code on the CPU with tiny sizes (no GPU needed)")
    ap.add_argument("--out", default=str(ROOT / "build" / "gpu_check"))
    a = ap.parse_args()
    from demsr.core.devices import import_torch

    torch = import_torch()
    smoke = bool(a.cpu_smoke)
    if smoke:
        device = "cpu"
    else:
        choice = select_device("auto")
        if not choice.device.startswith("cuda"):
            print(f"gpu-check: FAILED — no CUDA device: {choice.note or choice.description}. "
                  "(--cpu-smoke runs the same code on the CPU.)", file=sys.stderr)
            return 2
        device = "cuda"  # the DEVICE choice a user makes; select_device names cuda:0
        print(f"gpu-check on {choice.description}, torch {torch.__version__}", flush=True)
    os.makedirs(a.out, exist_ok=True)
    result = dict(device=device, smoke=smoke, torch=torch.__version__)
    checks = [("superresolve", lambda: superresolve_check(a.out, device, smoke, torch)),
              ("voidrepair", lambda: voidrepair_check(a.out, device, smoke)),
              ("training", lambda: training_check(a.out, device, smoke)),
              ("out_of_memory", lambda: oom_check(a.out, device, smoke, torch))]
    failed = []
    started = time.perf_counter()
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            result[name] = check()
            print(f"[{time.perf_counter() - started:6.1f}s] {name}: OK "
                  f"{json.dumps(result[name], default=float)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - every check runs; any failure fails the run
            traceback.print_exc()
            result[name] = dict(error=f"{type(exc).__name__}: {exc}")
            failed.append(name)
            print(f"[{time.perf_counter() - started:6.1f}s] {name}: FAILED ({exc})",
                  file=sys.stderr, flush=True)
        result.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
    if not smoke and "superresolve" not in failed:
        mpx = result["superresolve"]["gpu"]["mpx_s"]
        result["target_mpx_s_met"] = mpx >= TARGET_MPX_S
        if mpx < TARGET_MPX_S:
            failed.append(f"speed {mpx:.1f} Mpx/s < {TARGET_MPX_S:g}")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["failed"] = failed
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1, default=float)
    if not smoke and "superresolve" in result and "gpu" in result["superresolve"]:
        s = result["superresolve"]
        print(f"Super-resolve ×2 (engine, no file I/O): {s['gpu']['mpx_s']:.1f} Mpx/s on "
              f"{device} vs {s['cpu']['mpx_s']:.2f} Mpx/s on CPU ({s['speed_ratio']:.1f}×), "
              f"peak GPU memory {s['gpu']['peak_gpu_mib']:.0f} MiB, max |GPU − CPU| "
              f"{s['max_abs_diff_m']:.2g} m")
    print(f"gpu-check: {'FAILED: ' + ', '.join(failed) if failed else 'OK'} "
          f"({result['total_seconds']:.0f} s; {os.path.join(a.out, 'result.json')})",
          file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
