"""Session set-up: the tests run this checkout's `demsr` (src/demsr, installed editable
in the venv by `make venv`); scripts/ and tests/helpers are on sys.path by pyproject's
pytest `pythonpath`."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
try:
    import demsr  # also puts the plugin's private dependency folder (torch) on sys.path
    found = Path(demsr.__file__).resolve().parent
except ImportError:
    found = None
if found != ROOT / "src" / "demsr":
    pytest.exit(f"This Python imports demsr from {found or 'nowhere'}, not from this checkout's "
                "src/demsr: run `make venv` here (it installs the checkout into .venv) and the "
                "tests with .venv/bin/python.", returncode=4)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests call osgeo.gdal directly too: state its error mode as the plugin's code does.
from demsr.core.raster.gdal_mode import osgeo_gdal  # noqa: E402

osgeo_gdal()

DEMS = (ROOT.parent / "shared" / "data" / "dems").resolve()
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def dems_dir() -> Path:
    """The shared real DEMs (../shared/data/dems), skipped only if absent."""
    if not DEMS.is_dir():
        pytest.skip(f"shared DEMs not found at {DEMS}")
    return DEMS


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def write_crop(src: Path, dst: Path, row0: int = 0, col0: int = 0, height=None, width=None,
               nodata=None) -> Path:
    """Copy a window of a real DEM to its own GeoTIFF (with its georeferencing)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as ds:
        height = height or ds.height - row0
        width = width or ds.width - col0
        win = Window(col0, row0, width, height)
        data = ds.read(1, window=win)
        profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=data.dtype,
                       crs=ds.crs, transform=ds.window_transform(win),
                       nodata=ds.nodata if nodata is None else nodata)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data, 1)
    return dst


@pytest.fixture
def crop(tmp_path, dems_dir):
    """crop(name, row0, col0, height, width) -> path of a GeoTIFF crop of a shared DEM."""
    def _crop(name: str, row0: int = 0, col0: int = 0, height=None, width=None, nodata=None):
        return write_crop(dems_dir / name, tmp_path / f"crop_{name}_{row0}_{col0}.tif",
                          row0, col0, height, width, nodata)
    return _crop


@pytest.fixture(scope="session")
def provider(qgis_processing):
    """The demsr provider registered in the in-process QgsApplication."""
    from qgis.core import QgsApplication

    from demsr.algorithms.provider import DemSrProvider

    registry = QgsApplication.processingRegistry()
    p = registry.providerById("demsr")
    if p is None:
        p = DemSrProvider()
        registry.addProvider(p)
    return p
