"""Planning a mosaic (in the process that runs it): the request, the one output grid, one job
per output tile, the folder's manifest, what is already done, and the final VRT."""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import rasterio

from ...atomic import replacing, write_atomic
from ...errors import DemSrError
from ...monitor import Monitor
from ...nodata.fill import FILL_SEARCH_PIXELS
from ...raster.grid import Grid, output_grid
from ...raster.io import open_dem
from ..superresolve import SuperResolveRequest, build_upsampler

WORK = ".work"
MANIFEST = ".demsr_mosaic.json"
CHUNK = 4096  # output pixels per job side when the input is one raster, not tiles


@dataclass
class MosaicRequest:
    inputs: list[str]                          # tiles of one mosaic, or one VRT / raster
    out_dir: str                               # on a filesystem every worker can write
    # The engine's settings (band, scale or target resolution, method, model, device, tile
    # and batch size, overlap); its paths, grid and window are set per output tile.
    sr: SuperResolveRequest = field(
        default_factory=lambda: SuperResolveRequest("", "", method="model"))
    workers: int = 1                           # local worker processes (no scheduler)
    scheduler: Optional[str] = None            # Dask scheduler address (or scheduler file)
    name: str = "mosaic"                       # OUT/<name>.vrt
    suffix: Optional[str] = None               # tile outputs <stem><suffix>.tif; "_x<scale>"


@dataclass
class Job:
    name: str                                  # output file name (in out_dir)
    window: tuple[int, int, int, int]          # (row0, col0, height, width) of the output grid
    crop: tuple[int, int, int, int]            # source window (row0, col0, height, width)

    @property
    def pixels(self) -> int:
        return self.window[2] * self.window[3]


@dataclass
class MosaicResult:
    vrt_path: str
    tiles: list[str]
    computed: int
    skipped: int
    output_pixels: int
    seconds: float
    grid: Grid = field(repr=False, default=None)


def source_vrt(req: MosaicRequest, work: str) -> tuple[str, int, list[str]]:
    """The mosaic as one raster (a VRT of the tiles, or the input itself), its band, and
    its pieces (the tiles; none for a single raster)."""
    from ...raster.gdal_mode import osgeo_gdal
    gdal = osgeo_gdal()

    paths = [os.path.abspath(p) for p in req.inputs]
    for p in paths:
        if not os.path.isfile(p):
            raise DemSrError(f"Input '{p}' does not exist.")
    band = req.sr.band
    if len(paths) == 1:
        ds = gdal.Open(paths[0])
        if ds is None:
            raise DemSrError(f"Cannot read '{paths[0]}' as a raster.")
        files = ds.GetFileList() or []
        pieces = [f for f in files[1:] if f != paths[0]] \
            if ds.GetDriver().ShortName == "VRT" else []
        return paths[0], band, pieces
    grids = [open_dem(p, band) for p in paths]
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
    ds = gdal.BuildVRT(vrt, paths, bandList=[band])
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


def _halo(sr: SuperResolveRequest, src, dst: Grid) -> int:
    """Source pixels the method reads around an output pixel (the engine's halo)."""
    from dataclasses import replace

    probe = replace(sr, input_path=src.path, output_path="", device="cpu", batch_size=1)
    return int(build_upsampler(probe, src, dst, Monitor()).halo)


def plan(req: MosaicRequest, source: str, band: int,
         pieces: list[str]) -> tuple[Grid, Grid, list[Job]]:
    """The input and output grids of the whole mosaic and one job per input tile (or per
    chunk of a single raster). Each job's crop reaches past its tile by the method's halo
    and the void fill's search distance, so it sees what the merged raster would."""
    sr = req.sr
    src = open_dem(source, band)
    dst = output_grid(src.grid, sr.scale, sr.target_resolution)
    margin = _halo(sr, src, dst) + sr.overlap + FILL_SEARCH_PIXELS + 2
    suffix = req.suffix if req.suffix is not None else \
        (f"_x{sr.scale:g}" if not sr.target_resolution else f"_{sr.target_resolution:g}")
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

    sr = req.sr
    keys = dict(inputs=[stamp(p) for p in req.inputs], band=sr.band, method=sr.method,
                model=stamp(sr.model_path) if sr.model_path else None, overlap=sr.overlap,
                grid=[list(dst.transform)[:6], dst.width, dst.height, str(dst.crs)],
                jobs=[[j.name, list(j.window)] for j in jobs])
    return hashlib.sha1(json.dumps(keys, sort_keys=True).encode()).hexdigest()


def claim_folder(req: MosaicRequest, dst: Grid, jobs: list[Job]) -> None:
    """Record the settings in OUT's manifest; refuse a folder holding another mosaic's tiles
    (a rerun with the same settings continues where the last one stopped)."""
    signature = _signature(req, dst, jobs)
    manifest = os.path.join(req.out_dir, MANIFEST)
    old = None
    if os.path.exists(manifest):
        with open(manifest) as f:
            old = json.load(f).get("signature")
    if old != signature and any(os.path.exists(os.path.join(req.out_dir, j.name))
                                for j in jobs):
        raise DemSrError(f"'{req.out_dir}' holds tiles of a mosaic with other inputs or "
                         "settings; use an empty folder (or remove them).")
    write_atomic(manifest, json.dumps(dict(signature=signature, request=asdict(req)), indent=1,
                                      default=str))


def job_grid(dst: Grid, job: Job) -> Grid:
    """The grid of one job's output file: its window of the mosaic's output grid."""
    r0, c0, h, w = job.window
    return Grid(dst.window_transform(r0, c0), w, h, dst.crs)


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


def write_vrt(out_dir: str, name: str, tiles: list[str]) -> str:
    """The mosaic VRT over the tiles (relative paths), written under a hidden name first."""
    from ...raster.gdal_mode import osgeo_gdal
    gdal = osgeo_gdal()

    path = os.path.join(out_dir, f"{name}.vrt")
    cwd = os.getcwd()
    with replacing(path) as tmp:
        try:
            os.chdir(out_dir)  # relative source paths: the folder can be moved as a whole
            ds = gdal.BuildVRT(os.path.basename(tmp), tiles)
            if ds is None:
                raise DemSrError("GDAL could not build the output VRT.")
            ds = None
        finally:
            os.chdir(cwd)
    return path
