"""Super-resolve DEM on real product pairs: a coarse product in, an independent finer DEM of
the same area as the truth (not a DEM degraded by ourselves).

    python scripts/real_pairs.py [--out build/real_pairs.md]

For each pair (PAIRS, all in ../shared/data/dems, licences in its SOURCES.tsv): the coarse
product super-resolved by the factor between the two (coarse cell / reference cell, in
metres) with METHOD=model (with UNCERTAINTY) and with GDAL Lanczos, cubic spline and cubic,
all through the engine on the coarse product's own grid; each result brought onto the
reference's own grid (its CRS; GDAL bilinear, as Evaluate DEM's ALIGN=result_to_reference)
and compared there, on the cells valid in every one. Coregistration: vertical = the median
of reference − bilinear(coarse) over those cells, added to every result alike (the two
products use different datums or epochs); horizontal: none (stated per pair).
"""
import argparse
import os
import tempfile

import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from default_data import CLASSICAL, DEMS_DIR, write_report  # noqa: E402
from demsr.core.evaluation.align import bring_onto  # noqa: E402
from demsr.core.evaluation.calibration import calibration  # noqa: E402
from demsr.core.terrain.cellsize import cell_size_m  # noqa: E402
from demsr.core.monitor import Monitor  # noqa: E402
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve  # noqa: E402
from demsr.core.raster.io import open_dem, read_band  # noqa: E402

# (coarse product, reference, what they are, horizontal coregistration)
PAIRS = [
    ("glacierflowmodel_aletsch_200m.tif", "oggm_RGI50-11.01270_46m.tif",
     "Swiss DEM at 200 m (EPSG:2056, MIT) → OGGM's 46 m DEM of RGI50-11.01270 (local "
     "transverse Mercator, BSD-3); other survey and epoch", "none"),
    ("demcompare_gironde_S2_derived_bathy_500m.tif", "demcompare_gironde_topobathy.tif",
     "Sentinel-2 wave-derived bathymetry, 500 m (UTM 30N, MSL; an estimate) → demcompare's "
     "Gironde topo-bathymetric reference (EPSG:4326, about 88 × 132 m; source not stated), "
     "both Apache-2.0", "none"),
    ("oggm_oetztal_srtm_3arcsec.tif", "openamundsen_rofental_50m.tif",
     "SRTM 3\" of the Ötztal Alps (EPSG:4326, OGGM sample data, BSD-3) → openAMUNDSEN's 50 m "
     "Rofental DEM (UTM 32N, CC BY 4.0; its survey is not stated in the repository); a shift "
     "of about one 50 m cell between them remains", "none"),
]


def _read(path):
    with rasterio.open(path) as ds:
        return read_band(ds, 1)


def _metres(grid):
    b = grid.bounds
    return cell_size_m(grid.res, grid.is_geographic, (b[1] + b[3]) / 2)


def evaluate_pair(coarse, reference, tmp):
    src, ref = open_dem(coarse), open_dem(reference)
    (cx, cy), (rx, ry) = _metres(src.grid), _metres(ref.grid)
    factor = round(min(8.0, (cx * cy / (rx * ry)) ** 0.5), 3)
    truth = _read(reference)
    runs = {}
    for method in ("model", *CLASSICAL):
        out = os.path.join(tmp, f"{method}.tif")
        unc = os.path.join(tmp, "sigma.tif") if method == "model" else None
        superresolve(SuperResolveRequest(coarse, out, scale=factor, method=method, device="cpu",
                                         tile_size=512, uncertainty_path=unc), Monitor())
        grid = open_dem(out).grid
        runs[method] = bring_onto(_read(out), grid, ref.grid, "bilinear")
        if unc:
            sigma = bring_onto(_read(unc), grid, ref.grid, "bilinear")
    plain = bring_onto(_read(coarse), src.grid, ref.grid, "bilinear")
    ok = np.isfinite(truth) & np.isfinite(plain) & np.isfinite(sigma)
    for v in runs.values():
        ok &= np.isfinite(v)
    offset = float(np.median(truth[ok] - plain[ok]))
    rmse = {m: float(np.sqrt(np.mean((v[ok] + offset - truth[ok]) ** 2)))
            for m, v in runs.items()}
    cal = calibration(runs["model"][ok] + offset - truth[ok], sigma[ok])
    return factor, int(ok.sum()), offset, rmse, cal


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out")
    a = ap.parse_args()
    lines = ["| coarse product → reference | factor | cells | vertical offset (m) | best "
             "classical | RMSE classical (m) | RMSE model (m) | ratio | model within 1σ / 2σ "
             "|", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for coarse, reference, what, shift in PAIRS:
            missing = [n for n in (coarse, reference)
                       if not os.path.exists(os.path.join(DEMS_DIR, n))]
            if missing:   # the shared folder is provisioned per session: say what is absent
                print(f"skipped {coarse} → {reference}: {', '.join(missing)} not in {DEMS_DIR}",
                      flush=True)
                notes.append(f"- {coarse} → {reference}: not measured ({', '.join(missing)} "
                             f"absent from {DEMS_DIR}).")
                continue
            factor, n, offset, rmse, cal = evaluate_pair(os.path.join(DEMS_DIR, coarse),
                                                         os.path.join(DEMS_DIR, reference),
                                                         tmp)
            best = min(CLASSICAL, key=rmse.get)
            lines.append(f"| {coarse} → {reference} | ×{factor:g} | {n} | {offset:+.2f} | "
                         f"{best} | {rmse[best]:.4g} | {rmse['model']:.4g} | "
                         f"{rmse['model'] / rmse[best]:.3f} | {100 * cal.within_1:.1f} % / "
                         f"{100 * cal.within_2:.1f} % |")
            notes.append(f"- {coarse} → {reference}: {what}. Horizontal shift: {shift}. "
                         + ", ".join(f"{m} {v:.4g} m" for m, v in rmse.items()) + ".")
            print(lines[-1], flush=True)
    write_report("\n".join(lines + [""] + notes) + "\n", a.out)


if __name__ == "__main__":
    main()
