"""Super-resolving a mosaic (a list of tiles, or a VRT) with N worker processes.

One output grid for the whole mosaic: the input tiles become one GDAL VRT, and the output
grid is that VRT's (as Super-resolve DEM would make it for the merged raster). Each input
tile's footprint on the output grid (the output cells whose centre lies in it) is a job:
a worker runs the Super-resolve engine (superresolve.py) on that window of the output grid,
reading from a crop of the VRT that reaches past the tile by the method's halo and by the
void fill's search distance. Every output cell thus sees the same input, neighbouring
tiles' cells included, as in one merged raster: tile borders are as seamless as the inside
of a raster, and nothing is computed twice.

Each job's GeoTIFF is written under OUT/.work and moved into OUT only when complete; the
final VRT over all tiles is written last, only when every tile is there. Cancel or a
crashed worker leaves complete tiles and no half-written file (OUT/.work is removed); a
rerun with the same settings skips the tiles already done (a readable file on the expected
grid, made by the same settings: OUT/.demsr_mosaic.json). Workers are processes (spawn),
each with its share of the CPU cores, or its own GPU.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from typing import Optional

import rasterio

from ..errors import Cancelled, DemSrError
from ..monitor import Monitor
from ..nodata.fill import FILL_SEARCH_PIXELS
from ..raster.grid import Grid, grid_factor, output_grid, subdivided
from ..raster.io import open_dem

WORK = ".work"
MANIFEST = ".demsr_mosaic.json"
CHUNK = 4096  # output pixels per job side when the input is one raster, not tiles


@dataclass
class MosaicRequest:
    inputs: list[str]                          # tiles of one mosaic, or one VRT / raster
    out_dir: str
    band: int = 1
    scale: Optional[float] = 2.0
    target_resolution: Optional[float] = None
    method: str = "model"
    model_path: Optional[str] = None
    device: str = "auto"                       # "cuda": one GPU per worker, round robin
    workers: int = 1
    tile_size: int = 1024
    overlap: int = 0
    batch_size: int = 1
    name: str = "mosaic"                       # OUT/<name>.vrt
    suffix: Optional[str] = None               # tile outputs <stem><suffix>.tif; "_x<scale>"


@dataclass
class Job:
    name: str                                  # output file name (in out_dir)
    window: tuple[int, int, int, int]          # (row0, col0, height, width) of the output grid
    crop: tuple[int, int, int, int]            # source window (row0, col0, height, width)


@dataclass
class MosaicResult:
    vrt_path: str
    tiles: list[str]
    computed: int
    skipped: int
    output_pixels: int
    seconds: float
    grid: Grid = field(repr=False, default=None)


# ---------------------------------------------------------------- planning (parent process)

def _source_vrt(req: MosaicRequest, work: str) -> tuple[str, int, list[str]]:
    """The mosaic as one raster (a VRT of the tiles, or the input itself), its band, and
    its pieces (the tiles; none for a single raster)."""
    from osgeo import gdal

    paths = [os.path.abspath(p) for p in req.inputs]
    for p in paths:
        if not os.path.isfile(p):
            raise DemSrError(f"Input '{p}' does not exist.")
    if len(paths) == 1:
        ds = gdal.Open(paths[0])
        if ds is None:
            raise DemSrError(f"Cannot read '{paths[0]}' as a raster.")
        files = ds.GetFileList() or []
        pieces = [f for f in files[1:] if f != paths[0]] \
            if ds.GetDriver().ShortName == "VRT" else []
        return paths[0], req.band, pieces
    grids = [open_dem(p, req.band) for p in paths]
    first = grids[0].grid
    for p, s in zip(paths, grids):
        g = s.grid
        if g.crs != first.crs:
            raise DemSrError(f"'{os.path.basename(p)}' has another CRS than "
                             f"'{os.path.basename(paths[0])}': the tiles of a mosaic share one "
                             "grid. Warp them first (gdalwarp -t_srs … -tr … -tap).")
        rx, ry = g.res
        off_x = (g.transform.c - first.transform.c) / first.res[0]
        off_y = (first.transform.f - g.transform.f) / first.res[1]
        if (abs(rx - first.res[0]) > 1e-9 * rx or abs(ry - first.res[1]) > 1e-9 * ry
                or abs(off_x - round(off_x)) > 1e-6 or abs(off_y - round(off_y)) > 1e-6):
            raise DemSrError(f"'{os.path.basename(p)}' is not on the pixel grid of "
                             f"'{os.path.basename(paths[0])}' (pixel size or alignment): the "
                             "tiles of a mosaic share one grid. Warp them first (gdalwarp "
                             "-tr … -tap).")
    vrt = os.path.join(work, "source.vrt")
    ds = gdal.BuildVRT(vrt, paths, bandList=[req.band])
    if ds is None:
        raise DemSrError("GDAL could not build a VRT of the input tiles.")
    ds = None
    return vrt, 1, paths


def _footprint(dst: Grid, bounds: tuple) -> Optional[tuple[int, int, int, int]]:
    """Output cells whose centre lies in `bounds` (left, bottom, right, top), as a window."""
    left, bottom, right, top = bounds
    rx, ry = dst.res
    x0, y0 = dst.transform.c, dst.transform.f
    c0 = max(0, math.ceil((left - x0) / rx - 0.5 - 1e-9))
    c1 = min(dst.width, math.ceil((right - x0) / rx - 0.5 - 1e-9))
    r0 = max(0, math.ceil((y0 - top) / ry - 0.5 - 1e-9))
    r1 = min(dst.height, math.ceil((y0 - bottom) / ry - 0.5 - 1e-9))
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, c0, r1 - r0, c1 - c0


def _crop(src: Grid, dst: Grid, window: tuple, margin: int) -> tuple[int, int, int, int]:
    """The source window under an output window, `margin` source pixels wider, clipped."""
    r0, c0, h, w = window
    left, top = dst.transform * (c0, r0)
    right, bottom = dst.transform * (c0 + w, r0 + h)
    col_a = math.floor((left - src.transform.c) / src.res[0]) - margin
    col_b = math.ceil((right - src.transform.c) / src.res[0]) + margin
    row_a = math.floor((src.transform.f - top) / src.res[1]) - margin
    row_b = math.ceil((src.transform.f - bottom) / src.res[1]) + margin
    ra, ca = max(0, row_a), max(0, col_a)
    rb, cb = min(src.height, row_b), min(src.width, col_b)
    return ra, ca, rb - ra, cb - ca


def _halo(req: MosaicRequest, src, dst: Grid) -> int:
    """Source pixels the method reads around an output pixel (the engine's halo)."""
    from .superresolve import SuperResolveRequest, build_upsampler

    probe = SuperResolveRequest(src.path, "", method=req.method, model_path=req.model_path,
                                device="cpu", batch_size=1)
    return int(build_upsampler(probe, src, dst, Monitor()).halo)


def plan(req: MosaicRequest, source: str, band: int,
         pieces: list[str]) -> tuple[Grid, Grid, list[Job]]:
    """The input and output grids of the whole mosaic and one job per input tile (or per
    chunk of a single raster)."""
    src = open_dem(source, band)
    dst = output_grid(src.grid, req.scale, req.target_resolution)
    margin = _halo(req, src, dst) + req.overlap + FILL_SEARCH_PIXELS + 2
    suffix = req.suffix if req.suffix is not None else \
        (f"_x{req.scale:g}" if not req.target_resolution else f"_{req.target_resolution:g}")
    jobs, names = [], set()
    if pieces:
        for p in pieces:
            with rasterio.open(p) as ds:
                b = ds.bounds
            win = _footprint(dst, (b.left, b.bottom, b.right, b.top))
            if win is None:
                continue
            name = os.path.splitext(os.path.basename(p))[0] + suffix + ".tif"
            if name in names:
                raise DemSrError(f"Two input tiles are named '{os.path.basename(p)}': their "
                                 "outputs would collide. Rename one.")
            names.add(name)
            jobs.append(Job(name, win, _crop(src.grid, dst, win, margin)))
    else:
        stem = os.path.splitext(os.path.basename(source))[0]
        for r in range(0, dst.height, CHUNK):
            for c in range(0, dst.width, CHUNK):
                win = (r, c, min(CHUNK, dst.height - r), min(CHUNK, dst.width - c))
                jobs.append(Job(f"{stem}{suffix}_r{r}_c{c}.tif", win,
                                _crop(src.grid, dst, win, margin)))
    if not jobs:
        raise DemSrError("No input tile covers an output pixel.")
    return src.grid, dst, jobs


def _signature(req: MosaicRequest, dst: Grid, jobs: list[Job]) -> str:
    """What a finished tile depends on: inputs (path, size, time), method, model, grid."""
    def stamp(p):
        st = os.stat(p)
        return [os.path.abspath(p), st.st_size, st.st_mtime_ns]

    model = req.model_path
    keys = dict(inputs=[stamp(p) for p in req.inputs], band=req.band, method=req.method,
                model=stamp(model) if model else None, overlap=req.overlap,
                grid=[list(dst.transform)[:6], dst.width, dst.height, str(dst.crs)],
                jobs=[[j.name, list(j.window)] for j in jobs])
    return hashlib.sha1(json.dumps(keys, sort_keys=True).encode()).hexdigest()


def tile_done(path: str, grid: Grid) -> bool:
    """A complete tile: opens, has the expected grid and every block reads."""
    if not os.path.isfile(path):
        return False
    try:
        with rasterio.open(path) as ds:
            if (ds.width, ds.height) != (grid.width, grid.height) or ds.crs != grid.crs:
                return False
            if not ds.transform.almost_equals(grid.transform, 1e-6 * grid.res[0]):
                return False
            for _, win in ds.block_windows(1):
                ds.read(1, window=win)
    except Exception:  # noqa: BLE001 - anything unreadable is redone
        return False
    return True


# ---------------------------------------------------------------- workers (child processes)

_CANCEL = None
_TEST_CRASH = "DEMSR_MOSAIC_TEST_CRASH"  # tests only: a worker dies in the middle of this tile


def _init_worker(cancel, slots, threads: int) -> None:
    """Runs first in each worker: its GPU (CUDA_VISIBLE_DEVICES, before torch is imported)
    or its share of the CPU cores."""
    global _CANCEL
    _CANCEL = cancel
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from ..backends import set_threads

    set_threads(threads)


def _run_job(job: dict, settings: dict) -> str:
    """One output window: the engine on a crop of the source VRT, then moved into place."""
    from osgeo import gdal

    from .superresolve import SuperResolveRequest, superresolve

    work, out = settings["work"], settings["out_dir"]
    stem = os.path.splitext(job["name"])[0]
    crop_path = os.path.join(work, f"{stem}.src.vrt")
    r0, c0, h, w = job["crop"]
    gdal.Translate(crop_path, settings["source"], format="VRT", srcWin=[c0, r0, w, h],
                   bandList=[settings["band"]])
    with rasterio.open(crop_path) as ds:
        crop = Grid(ds.transform, ds.width, ds.height, ds.crs)
    dst = Grid(*settings["grid"])
    wr, wc, wh, ww = job["window"]
    s = grid_factor(Grid(*settings["src_grid"]), dst)
    if s:  # the crop's own ×s grid: the network then maps it exactly, as the whole raster's
        grid, window = subdivided(crop, s), (wr - r0 * s, wc - c0 * s, wh, ww)
    else:
        grid, window = dst, (wr, wc, wh, ww)
    crash = os.environ.get(_TEST_CRASH) == job["name"]

    def progress(f):
        if crash and f > 0.5:
            os._exit(70)

    tmp = os.path.join(work, job["name"])
    superresolve(SuperResolveRequest(crop_path, tmp, band=1, method=settings["method"],
                                     model_path=settings["model_path"],
                                     device="cuda" if settings["cuda"] else settings["device"],
                                     tile_size=settings["tile_size"],
                                     overlap=settings["overlap"],
                                     batch_size=settings["batch_size"], grid=grid,
                                     window=window),
                 Monitor(progress=progress, cancelled=_CANCEL.is_set))
    os.replace(tmp, os.path.join(out, job["name"]))
    os.remove(crop_path)
    return job["name"]


# ---------------------------------------------------------------- the run

def _write_vrt(out_dir: str, name: str, tiles: list[str]) -> str:
    """The mosaic VRT over the tiles (relative paths), written under a hidden name first."""
    from osgeo import gdal

    path = os.path.join(out_dir, f"{name}.vrt")
    tmp = os.path.join(out_dir, f".{name}.vrt.partial")
    cwd = os.getcwd()
    try:
        os.chdir(out_dir)  # relative source paths: the folder can be moved as a whole
        ds = gdal.BuildVRT(os.path.basename(tmp), tiles)
        if ds is None:
            raise DemSrError("GDAL could not build the output VRT.")
        ds = None
    finally:
        os.chdir(cwd)
    os.replace(tmp, path)
    return path


def _gpus(req: MosaicRequest) -> int:
    """GPUs the workers share out (0: CPU), by the same rule as select_device."""
    if req.method != "model" or req.device == "cpu":
        return 0
    from ..devices import select_device

    if select_device(req.device).device.startswith("cuda"):
        from ..devices import import_torch

        return import_torch().cuda.device_count()
    return 0


def run_mosaic(req: MosaicRequest, monitor: Optional[Monitor] = None) -> MosaicResult:
    """Super-resolve the mosaic into req.out_dir: a GeoTIFF per input tile and <name>.vrt."""
    import multiprocessing as mp

    monitor = monitor or Monitor()
    started = time.perf_counter()
    if not req.inputs:
        raise DemSrError("Give the input tiles (or one VRT).")
    if req.workers < 1:
        raise DemSrError("Give at least one worker.")
    os.makedirs(req.out_dir, exist_ok=True)
    work = os.path.join(req.out_dir, WORK)
    shutil.rmtree(work, ignore_errors=True)  # what a killed run left
    os.makedirs(work)
    try:
        source, band, pieces = _source_vrt(req, work)
        src_grid, dst, jobs = plan(req, source, band, pieces)
        signature = _signature(req, dst, jobs)
        manifest = os.path.join(req.out_dir, MANIFEST)
        old = None
        if os.path.exists(manifest):
            with open(manifest) as f:
                old = json.load(f).get("signature")
        tiles = [os.path.join(req.out_dir, j.name) for j in jobs]
        if old != signature and any(os.path.exists(t) for t in tiles):
            raise DemSrError(f"'{req.out_dir}' holds tiles of a mosaic with other inputs or "
                             "settings; use an empty folder (or remove them).")
        with open(manifest + ".tmp", "w") as f:
            json.dump(dict(signature=signature, request=asdict(req)), f, indent=1)
        os.replace(manifest + ".tmp", manifest)
        grids = {j.name: Grid(dst.window_transform(j.window[0], j.window[1]), j.window[3],
                              j.window[2], dst.crs) for j in jobs}
        todo = [j for j in jobs if not tile_done(os.path.join(req.out_dir, j.name),
                                                 grids[j.name])]
        out_px = sum(j.window[2] * j.window[3] for j in jobs)
        gpus = _gpus(req)
        workers = min(req.workers, max(1, len(todo)))
        threads = max(1, (os.cpu_count() or 1) // workers)
        monitor.info(f"Mosaic of {len(pieces) or 1} raster(s): output {dst.width}×{dst.height} "
                     f"px in {len(jobs)} tiles ({len(jobs) - len(todo)} already done); "
                     f"{workers} worker(s), " + (f"{gpus} GPU(s)." if gpus else
                                                 f"{threads} CPU thread(s) each."))
        settings = dict(work=work, out_dir=req.out_dir, source=source, band=band,
                        method=req.method,
                        model_path=req.model_path, device=req.device, cuda=bool(gpus),
                        tile_size=req.tile_size, overlap=req.overlap,
                        batch_size=req.batch_size,
                        grid=(dst.transform, dst.width, dst.height, dst.crs),
                        src_grid=(src_grid.transform, src_grid.width, src_grid.height,
                                  src_grid.crs))
        if todo:
            _run_jobs(todo, settings, workers, gpus, threads, out_px, jobs, monitor, mp)
        vrt = _write_vrt(req.out_dir, req.name, [j.name for j in jobs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    monitor.info(f"Wrote {vrt} ({len(jobs)} tiles, {len(todo)} computed) in {seconds:.1f} s.")
    return MosaicResult(vrt, tiles, len(todo), len(jobs) - len(todo), out_px, seconds, dst)


def _run_jobs(todo: list[Job], settings: dict, workers: int, gpus: int, threads: int,
              out_px: int, jobs: list[Job], monitor: Monitor, mp) -> None:
    """The jobs over a pool of spawned workers; progress by output pixels; on cancel, error
    or a dead worker, the others stop and the error is raised."""
    ctx = mp.get_context("spawn")
    cancel = ctx.Event()
    slots = ctx.Queue()
    for k in range(workers):
        slots.put(k % gpus if gpus else None)
    done_px = sum(j.window[2] * j.window[3] for j in jobs) - \
        sum(j.window[2] * j.window[3] for j in todo)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(cancel, slots, threads))
    pending = {pool.submit(_run_job, asdict(j), settings): j for j in todo}
    failure = None
    try:
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    failure = failure or exc
                    continue
                done_px += job.window[2] * job.window[3]
                monitor.progress(done_px / out_px)
            if failure is None and monitor.cancelled():
                failure = Cancelled("cancelled by the user")
            if failure is not None:
                cancel.set()
                for fut in pending:
                    fut.cancel()
                wait(pending)
                break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if isinstance(failure, BrokenProcessPool):
        raise DemSrError("A worker process died (out of memory, or killed); the tiles finished "
                         "so far are kept. Run again to continue.")
    if failure is not None:
        raise failure


# ---------------------------------------------------------------- command line

def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/mosaic.py",
        description="Super-resolve a mosaic (tiles, or one VRT) with N worker processes into "
                    "OUT: a GeoTIFF per input tile and OUT/<name>.vrt.")
    ap.add_argument("inputs", nargs="+", help="input tiles (one grid), or one VRT")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--target-resolution", type=float)
    ap.add_argument("--method", default="model")
    ap.add_argument("--model", help="checkpoint (default: the bundled model for the scale)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (one GPU per worker)")
    ap.add_argument("--band", type=int, default=1)
    ap.add_argument("--tile-size", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--name", default="mosaic")
    a = ap.parse_args(argv)
    t0 = time.time()
    log = lambda m: print(f"[{time.time() - t0:7.1f}s] {m}", flush=True)  # noqa: E731
    last = [-1]

    def progress(f):
        pct = int(f * 100)
        if pct // 10 != last[0] // 10:
            last[0] = pct
            log(f"{pct} %")

    try:
        res = run_mosaic(MosaicRequest(
            a.inputs, a.out, band=a.band, scale=a.scale, target_resolution=a.target_resolution,
            method=a.method, model_path=a.model, device=a.device, workers=a.workers,
            tile_size=a.tile_size, batch_size=a.batch_size, name=a.name),
            Monitor(progress=progress, info=log, warning=lambda m: log("WARNING " + m)))
    except (DemSrError, Cancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log(f"{res.output_pixels / 1e6:.1f} Mpx in {res.seconds:.1f} s "
        f"({res.output_pixels / 1e6 / res.seconds:.2f} Mpx/s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
