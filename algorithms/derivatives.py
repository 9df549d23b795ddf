"""demsr:derivatives — slope, aspect, curvatures, flow accumulation and streams of a DEM."""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import rasterio
from qgis.core import (QgsProcessingException, QgsProcessingParameterBand,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.errors import DemSrError
from ..core.raster.io import (DEFAULT_NODATA, GDAL_ENV, atomic_output, check_output_path,
                              gtiff_profile, open_dem, read_band)
from ..core.terrain import DEFAULT_STREAM_THRESHOLD, compute_derivatives
from ..core.terrain.cellsize import cell_sizes
from .common import DemSrAlgorithm, monitor_for, raster_source, style_output, user_errors

STREAMS_NODATA = 255
# Output parameter → core derivative name; scripts and models depend on these names.
OUTPUTS = {
    "SLOPE": "slope",
    "ASPECT": "aspect",
    "PLAN_CURVATURE": "plan_curvature",
    "PROFILE_CURVATURE": "profile_curvature",
    "TANGENTIAL_CURVATURE": "tangential_curvature",
    "FLOW_ACCUMULATION": "flow_accumulation",
    "STREAMS": "streams",
}
LABELS = {
    "SLOPE": "Slope (degrees)",
    "ASPECT": "Aspect (degrees from north)",
    "PLAN_CURVATURE": "Plan curvature (1/m)",
    "PROFILE_CURVATURE": "Profile curvature (1/m)",
    "TANGENTIAL_CURVATURE": "Tangential curvature (1/m)",
    "FLOW_ACCUMULATION": "Flow accumulation (cells)",
    "STREAMS": "Streams",
}
ON_BY_DEFAULT = {"SLOPE", "PLAN_CURVATURE", "PROFILE_CURVATURE", "TANGENTIAL_CURVATURE",
                 "FLOW_ACCUMULATION", "STREAMS"}  # DS-HAT's six


class DerivativesAlgorithm(DemSrAlgorithm):
    NAME = "derivatives"
    DISPLAY_NAME = "Terrain derivatives"
    GROUP = "Terrain"
    HELP_ANCHOR = "terrain-derivatives"

    INPUT = "INPUT"
    BAND = "BAND"
    STREAM_THRESHOLD = "STREAM_THRESHOLD"
    SLOPE = "SLOPE"
    ASPECT = "ASPECT"
    PLAN_CURVATURE = "PLAN_CURVATURE"
    PROFILE_CURVATURE = "PROFILE_CURVATURE"
    TANGENTIAL_CURVATURE = "TANGENTIAL_CURVATURE"
    FLOW_ACCUMULATION = "FLOW_ACCUMULATION"
    STREAMS = "STREAMS"

    def shortHelpString(self):  # noqa: N802
        return self.with_labels(self.tr(
            "Slope, aspect, plan/profile/tangential curvature, D8 flow accumulation and a "
            "stream network of a DEM — the terrain inputs of DS-HAT. Only the outputs you "
            "ask for are computed; each is its own raster, so the modeler can chain them.\n\n"
            "<b>INPUT</b>: the DEM (any GDAL raster). Projected rasters use their pixel size "
            "(elevations in the same unit); geographic rasters (e.g. EPSG:4326 SRTM tiles) use "
            "metres per degree at each row's latitude, so slopes are real slopes.\n"
            "<b>BAND</b>: the elevation band (default 1).\n"
            "<b>STREAM_THRESHOLD</b>: a cell is a stream when at least this many cells "
            "(itself included) drain through it; at least 1, default 1500 (DS-HAT's str1500).\n"
            "<b>SLOPE</b>: degrees, Horn's method (as GDAL/QGIS slope).\n"
            "<b>ASPECT</b>: degrees clockwise from north of the direction the slope faces; "
            "nodata on flat cells.\n"
            "<b>PLAN_CURVATURE</b>, <b>PROFILE_CURVATURE</b>, <b>TANGENTIAL_CURVATURE</b>: "
            "Evans–Young quadratic fit, in 1/m (not ×100); positive = convex (ridges, "
            "shoulders), negative = concave (valleys, footslopes); 0 where the ground is "
            "flat (no gradient direction).\n"
            "<b>FLOW_ACCUMULATION</b>: number of cells draining through each cell, itself "
            "included, by D8 after depression filling and flat resolution (Barnes 2014).\n"
            "<b>STREAMS</b>: Byte raster, 1 where flow accumulation ≥ STREAM_THRESHOLD, "
            "else 0.\n\n"
            "Nodata: no derivative uses a nodata cell as an elevation. At the raster edge and "
            "beside voids a missing neighbour is extrapolated linearly through the centre "
            "cell; single-cell strips get nodata. Voids act like the raster edge for flow: "
            "water reaching them leaves the grid, and nothing is routed across them. "
            "Outputs are Float32 GeoTIFFs (nodata -32768) except STREAMS (Byte, nodata 255). "
            "The whole raster is processed in memory (a 4000×4000 DEM takes about 1 GB). "
            "Cancelling leaves no output file behind."))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input DEM")))
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, self.tr("Elevation band"), defaultValue=1,
            parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.STREAM_THRESHOLD, self.tr("Stream threshold (cells)"),
            QgsProcessingParameterNumber.Integer, defaultValue=DEFAULT_STREAM_THRESHOLD,
            minValue=1))
        for key, label in LABELS.items():
            self.addParameter(QgsProcessingParameterRasterDestination(
                key, self.tr(label), optional=True, createByDefault=key in ON_BY_DEFAULT))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        monitor = monitor_for(feedback)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        path = raster_source(layer, self.INPUT)
        band = self.parameterAsInt(parameters, self.BAND, context) or 1
        threshold = self.parameterAsInt(parameters, self.STREAM_THRESHOLD, context)
        targets = {}
        for key in OUTPUTS:
            dest = self.parameterAsOutputLayer(parameters, key, context)
            if dest:
                targets[key] = dest
        if not targets:
            raise QgsProcessingException(self.tr(
                "No output requested: set at least one of " + ", ".join(OUTPUTS) +
                " to a file or a temporary output."))
        if "STREAMS" in targets and threshold < 1:
            raise QgsProcessingException(self.tr(
                f"STREAM_THRESHOLD must be at least 1 cell (got {threshold})."))
        with user_errors():
            for dest in targets.values():
                check_output_path(dest)
            src = open_dem(path, band)
            with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
                dem = read_band(ds, band)
            if not np.isfinite(dem).any():
                raise DemSrError(
                    f"Band {band} of '{layer.name()}' has no valid cells (all nodata): "
                    "nothing to derive. Check the band and the layer's nodata value.")
            self._report_cells(src.grid, monitor)
            which = {OUTPUTS[key] for key in targets}
            result = compute_derivatives(dem, src.grid, which, threshold, monitor.sub(0.0, 0.9))
            del dem
            self._write(result, targets, src.grid, monitor.sub(0.9, 1.0))
        for key, dest in targets.items():
            name = f"{layer.name()} {OUTPUTS[key].replace('_', ' ')}"
            style_output(context, dest, OUTPUTS[key], name)
        return {key: targets.get(key) for key in OUTPUTS}

    @staticmethod
    def _report_cells(grid, monitor) -> None:
        sizes = cell_sizes(grid)
        if grid.is_geographic:
            monitor.info(
                f"Geographic CRS: cells are {sizes.dx.min():.2f}–{sizes.dx.max():.2f} m wide and "
                f"{sizes.dy.mean():.2f} m tall (metres per degree at each row's latitude).")
        else:
            monitor.info(f"Cell size {sizes.dx[0]:g} × {sizes.dy[0]:g} (CRS units, taken as the "
                         "unit of the elevations).")

    @staticmethod
    def _write(result: dict, targets: dict, grid, monitor) -> None:
        """All outputs appear together or, on error or cancel, none does."""
        with ExitStack() as stack:
            for i, (key, dest) in enumerate(targets.items()):
                monitor.check()
                if key == "STREAMS":
                    profile = gtiff_profile(grid, STREAMS_NODATA, dtype="uint8")
                else:
                    profile = gtiff_profile(grid, DEFAULT_NODATA)
                writer = stack.enter_context(atomic_output(dest, profile))
                writer.write(result.pop(OUTPUTS[key]), 0, 0)
                monitor.progress((i + 1) / len(targets))
            monitor.check()
