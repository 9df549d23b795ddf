"""Benchmark: a mosaic on Dask (2 local worker processes) against one process on the merged
raster, in the same run: 4000² of real SRTM terrain (benchmarks/run.py's mirrored Turkey
DEM) cut into 2×2 tiles of 2000², ×2 with the bundled model on the CPU (64 Mpx of output).
Target: the mosaic's time ≤ 1.2× the one process's (Dask's overhead stays small).

    python benchmarks/mosaic.py [--size 4000] [--workers 2]   (results: build/bench/mosaic.json)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from run import WORK, measure, mosaic

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.2
ONE_PROCESS = ("import sys; from demsr.core.pipelines.superresolve import SuperResolveRequest, "
               "superresolve; superresolve(SuperResolveRequest(sys.argv[1], sys.argv[2], "
               "method='model', device='cpu'))")


def tiles(src: Path, size: int) -> list[str]:
    """The raster cut into 2×2 GeoTIFF tiles (one grid)."""
    from osgeo import gdal

    half, out = size // 2, []
    for r in (0, half):
        for c in (0, half):
            path = WORK / f"mosaic_{size}_r{r}_c{c}.tif"
            if not path.exists():
                gdal.Translate(str(path), str(src), srcWin=[c, r, half, half],
                               creationOptions=["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=3"])
            out.append(str(path))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    merged = mosaic(WORK / f"mosaic_{a.size}.tif", a.size)
    parts = tiles(merged, a.size)
    out_one, out_dir = WORK / f"mosaic_{a.size}_one.tif", WORK / f"mosaic_{a.size}_dask"
    for p in (out_one, out_dir):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    load = [round(v, 2) for v in os.getloadavg()]
    one = measure([sys.executable, "-c", ONE_PROCESS, str(merged), str(out_one)])
    dask = measure([sys.executable, "-m", "demsr", "mosaic", *parts, "--out", str(out_dir),
                    "--scale", "2", "--method", "model", "--device", "cpu",
                    "--workers", str(a.workers)])
    mpx = (2 * a.size) ** 2 / 1e6
    row = dict(size=a.size, output_mpx=mpx, workers=a.workers, cores=os.cpu_count(),
               load_before=load,
               load_after=[round(v, 2) for v in os.getloadavg()],
               one_process_s=round(one["seconds"], 1),
               one_process_mpx_s=round(mpx / one["seconds"], 2),
               one_process_peak_rss_mb=round(one["peak_rss_mb"]),
               mosaic_s=round(dask["seconds"], 1), mosaic_mpx_s=round(mpx / dask["seconds"], 2),
               ratio=round(dask["seconds"] / one["seconds"], 3), target=TARGET)
    print(json.dumps(row))
    (WORK / "mosaic.json").write_text(json.dumps(row, indent=1))
    return 0 if row["ratio"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
