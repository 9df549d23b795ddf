"""demsr:derivatives — slope, aspect, curvatures, flow accumulation and streams of a DEM."""
from __future__ import annotations

from qgis.core import (QgsProcessingException, QgsProcessingParameterBand,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.pipelines.derivatives import derive_to_files
from ..core.terrain import DEFAULT_STREAM_THRESHOLD
from .common import (DemSrAlgorithm, input_name, monitor_for, raster_source, style_output,
                     user_errors)

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
            QgsProcessingParameterNumber.Type.Integer, defaultValue=DEFAULT_STREAM_THRESHOLD,
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
            derive_to_files(path, band, {OUTPUTS[k]: dest for k, dest in targets.items()},
                            threshold, monitor)
        for key, dest in targets.items():
            name = f"{input_name(layer)} {OUTPUTS[key].replace('_', ' ')}"
            style_output(context, dest, OUTPUTS[key], name)
        return {key: targets.get(key) for key in OUTPUTS}
