"""Makes the README's algorithm figures from the bundled demo DEM (maintainer tool).

    python scripts/readme_figures.py        # writes docs/img/{voidrepair,derivatives,evaluate}.png

Each figure is a real run of the plugin's core on resources/demo/lidar_1m.tif (1 m lidar,
held out of training): Void repair/SR with METHOD=fill on a copy with seeded synthetic
voids, Terrain derivatives (slope and streams), and Evaluate DEM's hillshade picture for the
bundled ×2 model on the 2 m block mean, as `make demo` makes it. Scratch files go to
build/readme_figures/.
"""
import shutil
import sys
from pathlib import Path

import numpy as np

import demsr

ROOT = Path(__file__).resolve().parent.parent

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import rasterio  # noqa: E402

from demsr.core.evaluation.evaluate import EvaluationRequest, evaluate  # noqa: E402
from demsr.core.evaluation.report import hillshade, pictures_folder  # noqa: E402
from demsr.core.nodata.synthetic import synthetic_voids  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.pipelines.voidrepair import VoidRepairRequest, voidrepair  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402
from demsr.core.raster.write import write_array  # noqa: E402
from demsr.core.terrain import compute_derivatives  # noqa: E402
from demsr.core.raster.degrade import degrade_raster  # noqa: E402

DEM = Path(demsr.__file__).parent / "resources" / "demo" / "lidar_1m.tif"
IMG = ROOT / "docs" / "img"
WORK = ROOT / "build" / "readme_figures"
STREAM_THRESHOLD = 300  # cells: a 384² crop of 1 m lidar drains few cells


def _read(path):
    src = open_dem(str(path))
    with rasterio.open(path) as ds:
        return read_band(ds, 1), src.grid


def _panel(ax, image, title, **kw):
    ax.imshow(image, **kw)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def void_repair_figure() -> Path:
    dem, grid = _read(DEM)
    voids = synthetic_voids(dem, np.random.default_rng(2026), coverage=0.05)
    holed = np.where(voids, np.nan, dem).astype(np.float32)
    holed_path, out, mask_path = WORK / "holed.tif", WORK / "repaired.tif", WORK / "filled.tif"
    write_array(str(holed_path), holed, grid)
    voidrepair(VoidRepairRequest(str(holed_path), str(out), str(mask_path), method="fill"))
    repaired, _ = _read(out)
    with rasterio.open(mask_path) as ds:
        mask = ds.read(1)
    shade = np.ma.masked_invalid(hillshade(holed, grid))
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8))
    _panel(axes[0], shade, "DEM with voids (INPUT)", cmap="gray", vmin=0, vmax=1)
    _panel(axes[1], hillshade(repaired, grid), "Repaired DEM (METHOD=fill)", cmap="gray",
           vmin=0, vmax=1)
    _panel(axes[2], hillshade(repaired, grid), "Filled pixels (FILLED_MASK = 1)", cmap="gray",
           vmin=0, vmax=1)
    axes[2].imshow(np.ma.masked_where(mask != 1, mask), cmap="spring", alpha=0.6)
    return _save(fig, "voidrepair.png")


def derivatives_figure() -> Path:
    dem, grid = _read(DEM)
    d = compute_derivatives(dem, grid, {"slope", "streams"}, stream_threshold=STREAM_THRESHOLD)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    _panel(axes[0], d["slope"], "Slope (degrees)", cmap="viridis")
    fig.colorbar(axes[0].images[0], ax=axes[0], shrink=0.8)
    _panel(axes[1], hillshade(dem, grid), f"Streams (STREAM_THRESHOLD={STREAM_THRESHOLD})",
           cmap="gray", vmin=0, vmax=1)
    streams = np.ma.masked_where(np.nan_to_num(d["streams"]) < 1, d["streams"])
    axes[1].imshow(streams, cmap="winter", interpolation="nearest")
    return _save(fig, "derivatives.png")


def evaluate_figure() -> Path:
    lr, sr, html = WORK / "lidar_2m.tif", WORK / "lidar_1m_model.tif", WORK / "report.html"
    degrade_raster(str(DEM), str(lr), 2, "blockmean")
    superresolve(SuperResolveRequest(str(lr), str(sr), scale=2, method="model", device="cpu"))
    evaluate(EvaluationRequest(str(sr), str(DEM), compare_classical=True, low_res_path=str(lr),
                               output_html=str(html)))
    target = IMG / "evaluate.png"
    shutil.copyfile(Path(pictures_folder(str(html))) / "hillshades.png", target)
    return target


def _save(fig, name: str) -> Path:
    fig.tight_layout()
    path = IMG / name
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main() -> int:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    for make in (void_repair_figure, derivatives_figure, evaluate_figure):
        print(make())
    return 0


if __name__ == "__main__":
    sys.exit(main())
