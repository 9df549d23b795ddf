"""Voids filled with a fill value but no nodata tag: detected and named in a warning."""
import numpy as np
import pytest
import rasterio

from demsr.core.monitor import Monitor
from demsr.core.nodata.find import SentinelScan
from demsr.core.pipelines.derivatives import derive_to_files
from demsr.core.pipelines.superresolve import SuperResolveRequest, superresolve

SAGEHEN = "flopy_sagehen_10m.tif"


def _with_filled_voids(src, dst, value, nodata=None):
    """The crop with a few square voids set to `value` and the nodata tag removed or set."""
    with rasterio.open(src) as ds:
        data = ds.read(1).astype(np.float32)
        profile = ds.profile
    for r, c in ((20, 30), (70, 90), (110, 40)):
        data[r:r + 12, c:c + 9] = value
    profile.update(dtype="float32", nodata=nodata)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data, 1)
    return dst


@pytest.mark.parametrize("value", [-9999.0, -32767.0, 3.4028234663852886e38])
def test_superresolve_warns_about_undeclared_fill_values(crop, tmp_path, value):
    src = _with_filled_voids(crop(SAGEHEN, 100, 100, 150, 150), tmp_path / "f.tif", value)
    warnings = []
    superresolve(SuperResolveRequest(str(src), str(tmp_path / "o.tif"), scale=2,
                                     method="lanczos"), Monitor(warning=warnings.append))
    hits = [w for w in warnings if f"look like voids filled with {value:g}" in w]
    assert hits, warnings
    assert f"-a_nodata {value:g}" in hits[0] and "no nodata value" in hits[0]


def test_derivatives_warn_and_declared_nodata_is_quiet(crop, tmp_path):
    src = _with_filled_voids(crop(SAGEHEN, 100, 100, 150, 150), tmp_path / "f.tif", -9999.0)
    warnings = []
    derive_to_files(str(src), 1, {"slope": str(tmp_path / "s.tif")},
                    monitor=Monitor(warning=warnings.append))
    assert any("voids filled with -9999" in w for w in warnings), warnings
    tagged = _with_filled_voids(crop(SAGEHEN, 100, 100, 150, 150), tmp_path / "t.tif", -9999.0,
                                nodata=-9999.0)
    warnings.clear()
    derive_to_files(str(tagged), 1, {"slope": str(tmp_path / "s2.tif")},
                    monitor=Monitor(warning=warnings.append))
    assert not any("voids filled" in w for w in warnings), warnings


def test_real_low_values_are_not_taken_for_fill_values(dems_dir):
    """Bathymetry reaching -9999 m among its neighbours, and a clean DEM: no warning."""
    scan = SentinelScan()
    depths = np.linspace(-10500, -9000, 10000, dtype=np.float32).reshape(100, 100)
    depths[40:60, 40:60] = -9999.0
    scan.add(depths)
    assert scan.suspect() is None
    with rasterio.open(dems_dir / "marmap_hawaii_bathy.tif") as ds:
        scan = SentinelScan()
        scan.add(ds.read(1, masked=True).filled(np.nan).astype(np.float32))
    assert scan.suspect() is None
