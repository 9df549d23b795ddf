"""Synthetic radar-like voids, the void classes and the biharmonic first fill, on real DEMs."""
import numpy as np
import pytest
import rasterio
from scipy import ndimage

from demsr.core.nodata.inpaint import inpaint
from demsr.core.raster.io import read_band
from demsr.core.nodata.synthetic import synthetic_voids
from demsr.core.nodata.find import FILLED, LEFT, NODATA, VALID, classify_voids


def _dem(dems_dir, name):
    with rasterio.open(dems_dir / name) as ds:
        return read_band(ds, 1)


def test_synthetic_voids_sizes_shapes_and_placement(dems_dir):
    dem = _dem(dems_dir, "longyearbyen_1995_20m_xdem.tif")[:400, :400]
    mask = synthetic_voids(dem, np.random.default_rng(0), coverage=0.08)
    assert 0.07 <= mask.mean() <= 0.12
    assert not mask[:3].any() and not mask[-3:].any() and not mask[:, :3].any()
    labels, n = ndimage.label(mask)
    assert n >= 10
    spans, elong = [], []
    for sl in ndimage.find_objects(labels):
        spans.append(max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start))
    assert min(spans) >= 3 and max(spans) <= 60 * 2.2  # clusters may merge blobs
    # elongated: most single voids are clearly longer than wide (second moments)
    for i in range(1, n + 1):
        r, c = np.nonzero(labels == i)
        if r.size > 20:
            ev = np.linalg.eigvalsh(np.cov(np.stack([r, c])))
            elong.append(np.sqrt(ev[1] / max(ev[0], 1e-6)))
    assert np.median(elong) > 1.3
    # steep terrain gets more voids than flat terrain (radar shadow / layover)
    gy, gx = np.gradient(dem)
    steep = np.hypot(gx, gy) > np.percentile(np.hypot(gx, gy), 50)
    assert mask[steep].mean() > 1.3 * mask[~steep].mean()
    # reproducible from the seed
    assert np.array_equal(mask, synthetic_voids(dem, np.random.default_rng(0), coverage=0.08))


def test_classify_voids_footprint_and_size_limit():
    dem = np.ones((40, 40), np.float32)
    dem[:5, :] = np.nan            # touches the border: outside the footprint
    dem[10:13, 10:13] = np.nan     # small hole
    dem[20:36, 20:36] = np.nan     # 16 px wide hole
    classes, n_fill, n_left = classify_voids(dem)
    assert (classes[:5] == NODATA).all() and n_fill == 2 and n_left == 0
    assert (classes[10:13, 10:13] == FILLED).all() and (classes[20:36, 20:36] == FILLED).all()
    classes, n_fill, n_left = classify_voids(dem, max_void_size=10)
    assert (classes[20:36, 20:36] == LEFT).all() and (classes[10:13, 10:13] == FILLED).all()
    assert (n_fill, n_left) == (1, 1) and (classes[6:9] == VALID).all()


def test_biharmonic_fill_is_exact_on_planes_and_quadratics():
    y, x = np.mgrid[:60, :70].astype(np.float64)
    for surface in (3 * x - 2 * y + 100, 0.05 * (x - 30) ** 2 + 0.02 * (y - 25) ** 2):
        holed = surface.astype(np.float32).copy()
        hole = np.zeros_like(holed, bool)
        hole[20:40, 15:45] = True
        holed[hole] = np.nan
        filled = inpaint(holed, hole)
        np.testing.assert_allclose(filled[hole], surface[hole], atol=2e-3)


@pytest.mark.parametrize("name", ["flopy_sagehen_10m.tif", "oso_landslide_lidar_1.83m.tif"])
def test_first_fill_beats_gdal_fillnodata_on_real_dems(dems_dir, name, tmp_path):
    from osgeo import gdal

    dem = _dem(dems_dir, name)[:300, :300]
    voids = synthetic_voids(dem, np.random.default_rng(4), coverage=0.08)
    holed = dem.copy()
    holed[voids] = np.nan
    ds = gdal.GetDriverByName("MEM").Create("", 300, 300, 1, gdal.GDT_Float32)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(-32768)
    band.WriteArray(np.where(voids, -32768, holed))
    gdal.FillNodata(band, None, 256, 0)
    gfill = band.ReadAsArray()
    ours = inpaint(holed, voids)
    rmse = lambda a: np.sqrt(np.mean((a[voids] - dem[voids]) ** 2))  # noqa: E731
    assert rmse(ours) < 0.8 * rmse(gfill)
    assert np.array_equal(ours[~voids], dem[~voids])
