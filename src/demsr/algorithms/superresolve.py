"""demsr:superresolve — raise a DEM's resolution, streaming and seamless."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessingException, QgsProcessingParameterBand,
                       QgsProcessingParameterFile, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.devices import DEVICE_CHOICES
from ..core.nets import bundled
from ..core.pipelines.superresolve import METHODS, MODEL_METHOD, SuperResolveRequest, superresolve
from .common import (DemSrAlgorithm, input_name, monitor_for, raster_source, style_output,
                     unit_of, user_errors)

DEFAULT_METHOD = "model"


class SuperResolveAlgorithm(DemSrAlgorithm):
    NAME = "superresolve"
    DISPLAY_NAME = "Super-resolve DEM"
    HELP_ANCHOR = "super-resolve-dem"

    INPUT = "INPUT"
    BAND = "BAND"
    SCALE = "SCALE"
    TARGET_RESOLUTION = "TARGET_RESOLUTION"
    METHOD = "METHOD"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT = "OUTPUT"
    UNCERTAINTY = "UNCERTAINTY"

    def shortHelpString(self):  # noqa: N802
        return self.with_labels(self.tr(
            "Raises the resolution of a DEM. The output keeps the input's extent and CRS; its "
            "pixel size is the input's divided by SCALE (or TARGET_RESOLUTION when given). "
            "Rasters of any size are processed tile by tile with an overlap, so the result has "
            "no seams and memory use does not grow with the raster.\n\n"
            "<b>INPUT</b>: the DEM (any GDAL raster; projected or geographic).\n"
            "<b>BAND</b>: the elevation band.\n"
            "<b>SCALE</b>: resolution factor, above 1 and at most 16; non-integer factors such "
            "as 1.5625 (12.5 m → 8 m) work. The pixel count is rounded, the extent is kept.\n"
            "<b>TARGET_RESOLUTION</b>: optional output pixel size in CRS units (degrees for "
            "geographic rasters); overrides SCALE. The pixel size is exact and the grid is "
            "anchored at the input's top-left corner, as gdalwarp -tr does.\n"
            "<b>METHOD</b>: 'model' (default) runs a trained network at any factor above 1 up "
            "to 8, non-integer ones included (MODEL, or the bundled models: 8–22 % lower "
            "elevation RMSE than the best GDAL resampler on our held-out DEMs, by factor); "
            "'lanczos', 'cubicspline', 'cubic' and 'bilinear' are GDAL's resamplers, identical to "
            "gdalwarp -r METHOD away from the raster edges (any factor up to 16).\n"
            "<b>MODEL</b>: a checkpoint (.pt) written by Train DEM SR; only with METHOD=model. "
            "Empty = the bundled model for the factor (resources/models), tile by tile "
            "without seams: ") + bundled.rule_text() + self.tr(". "
            "A checkpoint runs at the factors it records (Train DEM SR writes them; one from "
            "before that: its own scale s and, for s ≥ 4, any factor up to 2s); other factors "
            "are refused with a message that lists what the model covers.\n"
            "<b>DEVICE</b>: auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps; the log "
            "says which device ran and why a GPU was not used.\n"
            "<b>OUTPUT</b>: Float32 GeoTIFF, tiled and compressed (DEFLATE, float predictor), "
            "BigTIFF when needed. The input's nodata value is kept (-32768 if it has none).\n"
            "<b>UNCERTAINTY</b> (optional, METHOD=model): each output pixel's expected error "
            "as one standard deviation in metres (the DEM's elevation unit), on the output's "
            "grid; written together with OUTPUT. On held-out DEMs about 68 % of the errors "
            "lie within it (docs/quality.md, Uncertainty); it costs 10–35 % more time. It "
            "does not cover the disagreement between two products.\n\n"
            "Advanced — <b>TILE_SIZE</b>: output pixels per tile side; <b>OVERLAP</b>: extra "
            "input pixels of context per tile side on top of what the method needs (which is "
            "always added); <b>BATCH_SIZE</b>: tiles per network call (halved automatically "
            "on GPU out-of-memory).\n\n"
            "Nodata: voids are filled (inverse distance) before resampling so they never "
            "poison their neighbours, and output pixels whose centre lies on an input nodata "
            "cell are nodata. Cancelling leaves no output file behind."))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input DEM")))
        # optional so that qgis_process calls may leave it out (band 1)
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, self.tr("Elevation band"), defaultValue=1,
            parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.SCALE, self.tr("Scale factor"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=2.0, minValue=1.0, maxValue=16.0))
        target = QgsProcessingParameterNumber(
            self.TARGET_RESOLUTION, self.tr("Target pixel size (overrides the scale factor)"),
            QgsProcessingParameterNumber.Type.Double, optional=True, minValue=0.0)
        # Geographic pixels: half of 3″ is 0.000416667°; 6 decimals would make it ×1.998.
        target.setMetadata({"widget_wrapper": {"decimals": 12}})
        self.addParameter(target)
        self.add_enum(self.METHOD, "Method", METHODS, DEFAULT_METHOD)
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("Model checkpoint (empty = bundled default)"),
            QgsProcessingParameterFile.Behavior.File, fileFilter="PyTorch checkpoint (*.pt)",
            optional=True))
        self.add_enum(self.DEVICE, "Device", DEVICE_CHOICES, "auto")
        self.add_int(self.TILE_SIZE, "Tile size (output pixels)", 1024, 64, 8192, advanced=True)
        self.add_int(self.OVERLAP, "Extra overlap (input pixels)", 0, 0, 1024, advanced=True)
        self.add_int(self.BATCH_SIZE, "Batch size (tiles)", 1, 1, 256, advanced=True)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Super-resolved DEM")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.UNCERTAINTY, self.tr("Uncertainty (1σ per pixel, metres)"), optional=True,
            createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        method = self.parameterAsEnumString(parameters, self.METHOD, context)
        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        if model and method != MODEL_METHOD:
            raise QgsProcessingException(self.tr(
                f"MODEL is set but METHOD is '{method}': set METHOD to 'model' to use the "
                "checkpoint, or clear MODEL to use the classical resampler."))
        target = self.optional_number(parameters, self.TARGET_RESOLUTION, context) or 0.0
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        if uncertainty and method != MODEL_METHOD:
            raise QgsProcessingException(self.tr(
                f"UNCERTAINTY is estimated for METHOD=model only, not for '{method}': set "
                "METHOD to 'model', or leave UNCERTAINTY out."))
        request = SuperResolveRequest(
            input_path=raster_source(layer, self.INPUT),
            output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            band=self.parameterAsInt(parameters, self.BAND, context) or 1,
            scale=self.parameterAsDouble(parameters, self.SCALE, context),
            target_resolution=target if target > 0 else None,
            method=method,
            model_path=model,
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            overlap=self.parameterAsInt(parameters, self.OVERLAP, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            uncertainty_path=uncertainty,
        )
        with user_errors():
            result = superresolve(request, monitor_for(feedback))
        what = (f"{request.target_resolution:g} {unit_of(layer)}" if request.target_resolution
                else f"×{request.scale:g}")
        how = f"model {os.path.splitext(os.path.basename(model))[0]}" if model else method
        style_output(context, request.output_path, "dem", f"{input_name(layer)} {what} {how}",
                     request.input_path)
        if result.uncertainty_path:
            style_output(context, result.uncertainty_path, "uncertainty",
                         f"{input_name(layer)} {what} uncertainty (1σ, m)")
        return {self.OUTPUT: result.output_path, self.UNCERTAINTY: result.uncertainty_path}
