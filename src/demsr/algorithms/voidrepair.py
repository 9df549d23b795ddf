"""demsr:voidrepair — fill DEM voids (first fill, a second DEM, or DS-HAT) onto a target grid."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessingException, QgsProcessingParameterBand,
                       QgsProcessingParameterFile, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.devices import DEVICE_CHOICES
from ..core.pipelines.voidrepair import METHODS, VoidRepairRequest, voidrepair
from .common import (DemSrAlgorithm, input_name, monitor_for, raster_source, style_output,
                     user_errors)


class VoidRepairAlgorithm(DemSrAlgorithm):
    NAME = "voidrepair"
    DISPLAY_NAME = "Void repair/SR (DS-HAT)"
    HELP_ANCHOR = "void-repairsr-ds-hat"

    INPUT = "INPUT"
    BAND = "BAND"
    TARGET_GRID = "TARGET_GRID"
    TARGET_RESOLUTION = "TARGET_RESOLUTION"
    METHOD = "METHOD"
    AUXILIARY = "AUXILIARY"
    SPECTRAL = "SPECTRAL"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    MAX_VOID_SIZE = "MAX_VOID_SIZE"
    TILE_SIZE = "TILE_SIZE"
    OUTPUT = "OUTPUT"
    FILLED_MASK = "FILLED_MASK"
    UNCERTAINTY = "UNCERTAINTY"

    def shortHelpString(self):  # noqa: N802
        return self.with_labels(self.tr(
            "Fills the voids (nodata holes) of a DEM and, optionally, brings it onto a finer "
            "or different grid. Voids are filled from a second DEM of the area when you have "
            "one (delta surface fill), else by a smooth biharmonic fill; the DS-HAT network is "
            "available as METHOD=model. Outputs a void-free DEM on the target grid and a mask "
            "of where each filled pixel came from.\n\n"
            "<b>INPUT</b>: the DEM with voids (e.g. ALOS 12.5 m, SRTM with radar voids). A "
            "void is a nodata region that does not touch the raster border; nodata connected "
            "to the border is outside the DEM's footprint and stays nodata.\n"
            "<b>BAND</b>: the elevation band.\n"
            "<b>METHOD</b>: auto (default: delta when AUXILIARY is given, else fill — what "
            "measured best, see the log), fill (biharmonic first fill only: continues slopes "
            "across a void; no PyTorch), delta (needs AUXILIARY: the auxiliary DEM plus the "
            "DEM − auxiliary difference interpolated across each void from its rim; no "
            "PyTorch), model (DS-HAT; MODEL, SPECTRAL; with AUXILIARY, a MODEL trained with "
            "auxiliary DEMs: it starts from the delta surface fill).\n"
            "<b>AUXILIARY</b>: optional second DEM of the area (Copernicus GLO-30/90, ASTER "
            "GDEM, NASADEM, a national or older survey DEM): any CRS, resolution and vertical "
            "offset; it may have voids of its own (void cells it does not cover get the first "
            "fill and are counted in the log). A constant or smooth offset between the two is "
            "removed; a median difference over 50 m at the void rims, or a different spread, "
            "is warned about (another unit or vertical datum?).\n"
            "<b>TARGET_GRID</b>: optional reference raster whose CRS, extent and pixel size "
            "the output takes (any CRS; e.g. an 8 m grid for a 12.5 m DEM, ×1.5625).\n"
            "<b>TARGET_RESOLUTION</b>: optional output pixel size in the input's CRS units, "
            "grid anchored at the input's top-left corner (as gdalwarp -tr). With neither "
            "TARGET_GRID nor TARGET_RESOLUTION the output is on the input's own grid (pure "
            "void repair: valid cells are kept exactly, only voids change). On a finer grid of "
            "the same CRS the voids are repaired on the input grid and Super-resolve DEM's "
            "bundled model takes the result onto the target grid.\n"
            "<b>SPECTRAL</b>: optional raster whose first four bands are Sentinel-2 B1–B4, in "
            "any CRS and resolution (it is warped onto the target grid). Only for METHOD=model "
            "with a model trained with spectral bands; such a model refuses to run without "
            "them, and a terrain-only model (like the bundled one) refuses them.\n"
            "<b>MODEL</b>: a DS-HAT checkpoint (.pt) from Train DEM SR with ARCHITECTURE=dshat "
            "(METHOD=model); empty = the bundled terrain-only model "
            "(resources/models/demsr_dshat.pt).\n"
            "<b>DEVICE</b>: auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps "
            "(METHOD=model).\n"
            "<b>MAX_VOID_SIZE</b>: voids wider than this many input pixels (twice the largest "
            "distance of a void cell from valid data) are left as nodata; 0 fills every void.\n"
            "<b>TILE_SIZE</b> (advanced, METHOD=model): target pixels per network tile side; "
            "tiles overlap by the network's context, so the result does not depend on it.\n"
            "<b>OUTPUT</b>: the repaired DEM, Float32 GeoTIFF; no nodata inside the footprint "
            "(except voids left by MAX_VOID_SIZE).\n"
            "<b>FILLED_MASK</b>: Byte GeoTIFF: 0 = kept from the input, 1 = filled by the first "
            "fill or the model, 2 = filled from the auxiliary DEM, 255 = nodata in OUTPUT "
            "(target pixel centre in a void counts as filled).\n"
            "<b>UNCERTAINTY</b> (optional): each filled cell's expected error as one standard "
            "deviation in metres (the DEM's elevation unit); nodata on every cell not filled "
            "(−32768). It grows with the distance into a void as the terrain around it varies "
            "(fill), or follows the local difference between the DEM and AUXILIARY (delta); "
            "METHOD=model gives the first fill's, which the bundled network changes little "
            "(only on the input grid's route: no SPECTRAL, no AUXILIARY). On held-out DEMs "
            "with synthetic voids about 70 % of the errors lie within it (docs/quality.md, "
            "Void repair uncertainty). On another target grid it is the input grid's σ taken "
            "bilinearly onto the target grid: it describes the void fill, not the grid change. "
            "Written together with OUTPUT and FILLED_MASK.\n\n"
            "Memory: fill and delta hold only masks of the input grid (about 8 bytes per "
            "pixel) and read each void's window from the file; the model routes flow over the "
            "whole input grid (about 65 bytes per pixel), or holds the target grid in memory on "
            "another CRS. Cancelling leaves no output file behind."))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("DEM with voids")))
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, self.tr("Elevation band"), defaultValue=1,
            parentLayerParameterName=self.INPUT, optional=True))
        self.add_enum(self.METHOD, "Method", METHODS, "auto")
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.AUXILIARY, self.tr("Auxiliary DEM of the area (another product)"),
            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.TARGET_GRID, self.tr("Target grid (reference raster)"), optional=True))
        target = QgsProcessingParameterNumber(
            self.TARGET_RESOLUTION, self.tr("Target pixel size (without a target grid)"),
            QgsProcessingParameterNumber.Type.Double, optional=True, minValue=0.0)
        target.setMetadata({"widget_wrapper": {"decimals": 12}})  # degrees need them
        self.addParameter(target)
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.SPECTRAL, self.tr("Sentinel-2 bands 1–4"), optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("DS-HAT model (empty = bundled default)"),
            QgsProcessingParameterFile.Behavior.File, fileFilter="PyTorch checkpoint (*.pt)",
            optional=True))
        self.add_enum(self.DEVICE, "Device", DEVICE_CHOICES, "auto")
        max_void = QgsProcessingParameterNumber(
            self.MAX_VOID_SIZE, self.tr("Leave voids wider than (input pixels, 0 = fill all)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.0, minValue=0.0)
        max_void.setMetadata({"widget_wrapper": {"decimals": 1}})
        self.add(max_void, advanced=True)
        self.add_int(self.TILE_SIZE, "Tile size (target pixels)", 384, 64, 4096, advanced=True)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Repaired DEM")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.FILLED_MASK, self.tr("Filled pixels")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.UNCERTAINTY, self.tr("Uncertainty of the fill (1σ per pixel, metres)"),
            optional=True, createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        target = self.optional_number(parameters, self.TARGET_RESOLUTION, context) or 0.0
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        mask = self.parameterAsOutputLayer(parameters, self.FILLED_MASK, context)
        if not output or not mask:
            raise QgsProcessingException(self.tr("Give both OUTPUT and FILLED_MASK files."))
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        request = VoidRepairRequest(
            input_path=raster_source(layer, self.INPUT),
            output_path=output,
            mask_path=mask,
            band=self.parameterAsInt(parameters, self.BAND, context) or 1,
            target_grid_path=self.optional_layer(parameters, self.TARGET_GRID, context),
            target_resolution=target if target > 0 else None,
            spectral_path=self.optional_layer(parameters, self.SPECTRAL, context),
            method=self.parameterAsEnumString(parameters, self.METHOD, context),
            auxiliary_path=self.optional_layer(parameters, self.AUXILIARY, context),
            model_path=self.parameterAsFile(parameters, self.MODEL, context) or None,
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            max_void_size=self.parameterAsDouble(parameters, self.MAX_VOID_SIZE, context),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            uncertainty_path=uncertainty,
        )
        with user_errors():
            result = voidrepair(request, monitor_for(feedback))
        name = input_name(layer)
        how = "repaired with auxiliary" if result.method == "delta" else "repaired"
        if result.method == "model" and request.model_path:
            how += f" model {os.path.splitext(os.path.basename(request.model_path))[0]}"
        style_output(context, output, "dem", f"{name} {how}", request.input_path)
        style_output(context, mask, "filled_mask", f"{name} filled pixels")
        if result.uncertainty_path:
            style_output(context, result.uncertainty_path, "uncertainty",
                         f"{name} fill uncertainty (1σ, m)")
        return {self.OUTPUT: result.output_path, self.FILLED_MASK: result.mask_path,
                self.UNCERTAINTY: result.uncertainty_path}
