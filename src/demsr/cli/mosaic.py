"""Super-resolve a mosaic (tiles of one grid, or one VRT) on Dask workers into OUT: a GeoTIFF
per input tile and OUT/<name>.vrt. Without --scheduler, a LocalCluster of --workers
processes on this machine; with it, that cluster's workers (OUT and the inputs on a
filesystem they all see)."""
from __future__ import annotations

import argparse
import sys

from ..core.errors import Cancelled, DemSrError
from ..core.monitor import Monitor


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("inputs", nargs="+", help="input tiles (one grid), or one VRT")
    ap.add_argument("--out", required=True, help="output folder")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=2.0)
    size.add_argument("--target-resolution", type=float, help="output pixel size (CRS units)")
    ap.add_argument("--method", default="model", help="model (default) or a classical method")
    ap.add_argument("--model", help="checkpoint (default: the bundled model for the factor)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, help="local worker processes")
    where.add_argument("--scheduler", help="a Dask scheduler's address (tcp://host:8786) or its "
                       "--scheduler-file: run on that cluster's workers")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (one GPU per worker)")
    ap.add_argument("--band", type=int, default=1)
    ap.add_argument("--tile-size", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--name", default="mosaic", help="OUT/<name>.vrt")


def run(a: argparse.Namespace) -> int:
    from . import log as timestamped
    from ..core.pipelines.mosaic import MosaicRequest, run_mosaic
    from ..core.pipelines.superresolve import SuperResolveRequest

    log = timestamped()
    last = [-1]

    def progress(f):
        pct = int(f * 100)
        if pct // 10 != last[0] // 10:
            last[0] = pct
            log(f"{pct} %")

    sr = SuperResolveRequest("", "", band=a.band,
                             scale=None if a.target_resolution else a.scale,
                             target_resolution=a.target_resolution, method=a.method,
                             model_path=a.model, device=a.device, tile_size=a.tile_size,
                             batch_size=a.batch_size)
    try:
        res = run_mosaic(MosaicRequest(a.inputs, a.out, sr, workers=a.workers,
                                       scheduler=a.scheduler, name=a.name),
                         Monitor(progress=progress, info=log,
                                 warning=lambda m: log("WARNING " + m)))
    except (DemSrError, Cancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log(f"{res.output_pixels / 1e6:.1f} Mpx in {res.seconds:.1f} s "
        f"({res.output_pixels / 1e6 / res.seconds:.2f} Mpx/s).")
    return 0
