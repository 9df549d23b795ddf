"""demsr:evaluate — how good is a DEM against a reference: metrics, error raster, HTML report."""
from __future__ import annotations

import json

from qgis.core import (QgsFeatureRequest, QgsProcessing, QgsProcessingOutputNumber,
                       QgsProcessingParameterBand, QgsProcessingParameterBoolean,
                       QgsProcessingParameterExtent, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterFileDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.evaluation.align import ALIGN_METHODS
from ..core.evaluation.evaluate import ALIGN_TARGETS, EvaluationRequest, evaluate
from ..core.terrain import DEFAULT_STREAM_THRESHOLD
from .common import (DemSrAlgorithm, input_name, monitor_for, plain_number, raster_source,
                     style_output, user_errors)

# Numeric output → core metric name; models and scripts depend on these names.
NUMBERS = {
    "RMSE": ("rmse", "Elevation RMSE (m)"),
    "MAE": ("mae", "Elevation MAE (m)"),
    "BIAS": ("bias", "Bias, mean of result − reference (m)"),
    "P95": ("p95", "95th percentile of |error| (m)"),
    "MAX_ABS": ("max_abs", "Maximum |error| (m)"),
    "SLOPE_RMSE": ("slope_rmse", "Slope RMSE (degrees)"),
    "ASPECT_RMSE": ("aspect_rmse", "Aspect RMSE, circular (degrees)"),
    "PROFILE_CURVATURE_RMSE": ("profile_curvature_rmse", "Profile curvature RMSE (1/m)"),
    "PLAN_CURVATURE_RMSE": ("plan_curvature_rmse", "Plan curvature RMSE (1/m)"),
    "SSIM": ("ssim", "SSIM"),
    "PSNR": ("psnr", "PSNR (dB, peak = reference elevation range)"),
    "STREAM_RECALL": ("stream_recall", "Share of reference stream cells reproduced (±1 cell)"),
    "STREAM_PRECISION": ("stream_precision", "Share of result stream cells that are real "
                                             "(±1 cell)"),
}


class EvaluateAlgorithm(DemSrAlgorithm):
    NAME = "evaluate"
    DISPLAY_NAME = "Evaluate DEM"
    HELP_ANCHOR = "evaluate-dem"

    INPUT = "INPUT"
    BAND = "BAND"
    REFERENCE = "REFERENCE"
    REFERENCE_BAND = "REFERENCE_BAND"
    COMPARE = "COMPARE"
    MASK = "MASK"
    EXTENT = "EXTENT"
    FILLED_MASK = "FILLED_MASK"
    ALIGN = "ALIGN"
    RESAMPLING = "RESAMPLING"
    COMPARE_CLASSICAL = "COMPARE_CLASSICAL"
    CLASSICAL_FACTOR = "CLASSICAL_FACTOR"
    LOW_RES = "LOW_RES"
    STREAM_THRESHOLD = "STREAM_THRESHOLD"
    WINDOW = "WINDOW"
    WINDOW_SIZE = "WINDOW_SIZE"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_ERROR = "OUTPUT_ERROR"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_JSON = "OUTPUT_JSON"
    PSNR_PEAK = "PSNR_PEAK"
    UNCERTAINTY = "UNCERTAINTY"
    WITHIN_1_SIGMA = "WITHIN_1_SIGMA"
    WITHIN_2_SIGMA = "WITHIN_2_SIGMA"
    PIXELS = "PIXELS"

    def shortHelpString(self):  # noqa: N802
        return self.with_labels(self.tr(
            "How good is a super-resolved or repaired DEM? Compares it with a reference DEM "
            "(lidar, a survey, a finer product) and reports elevation, slope, aspect, "
            "curvature and stream-network errors, SSIM and PSNR, as numbers the modeler can "
            "chain, CSV/JSON tables, an error raster and an HTML report with pictures. Every "
            "DEM is judged on the same cells: valid (not nodata) in the reference and in "
            "every DEM compared, inside the mask.\n\n"
            "<b>INPUT</b>: the DEM to judge (e.g. the output of Super-resolve DEM or Void "
            "repair).\n"
            "<b>BAND</b>: its elevation band.\n"
            "<b>REFERENCE</b>: the DEM taken as truth; any grid and CRS.\n"
            "<b>REFERENCE_BAND</b> (advanced): its elevation band.\n"
            "<b>COMPARE</b>: optional other DEMs judged side by side (a Lanczos resample, "
            "another model's output); any grid and CRS, band 1.\n"
            "<b>MASK</b>: optional polygon layer; only cells whose centre lies inside a "
            "polygon count.\n"
            "<b>EXTENT</b>: optional extent; only cells inside it count (with MASK: inside "
            "both).\n"
            "<b>FILLED_MASK</b>: optional FILLED_MASK output of Void repair (1 = filled); the "
            "metrics are then also reported inside and outside the voids.\n"
            "<b>UNCERTAINTY</b>: optional raster of the result's expected error, one standard "
            "deviation per cell (Super-resolve DEM's UNCERTAINTY output). The report then says "
            "which share of the cells lies within 1σ and 2σ (68.3 % and 95.4 % for a "
            "calibrated Gaussian σ), and draws each tenth of the cells by σ: its RMSE against "
            "its RMS σ, and its share within 1σ; numeric outputs WITHIN_1_SIGMA and "
            "WITHIN_2_SIGMA (shares, 0–1; NaN without UNCERTAINTY).\n"
            "<b>ALIGN</b>: which grid the evaluation runs on. reference_to_result (default): "
            "the reference (and every comparison DEM) is brought onto the result's grid; "
            "result_to_reference: the result and comparison DEMs onto the reference's grid. "
            "Layers on the very same grid are never resampled.\n"
            "<b>RESAMPLING</b> (advanced): how a layer is brought onto that grid. auto "
            "(default): GDAL 'average' (area averaging) when the target cells are coarser "
            "than the layer's, else 'bilinear'; or one GDAL method by name. The FILLED_MASK "
            "always uses nearest. A reference interpolated onto another grid (e.g. another "
            "CRS) is smoother than the ground and favours smoother DEMs: where you can, judge "
            "on the reference's own grid (ALIGN=result_to_reference).\n"
            "<b>COMPARE_CLASSICAL</b>: also make the classical baselines and judge them: the "
            "reference (on the evaluation grid) is degraded by CLASSICAL_FACTOR — block mean "
            "for an integer factor, GDAL area average otherwise — or LOW_RES is taken, and "
            "super-resolved back with GDAL Lanczos, cubic and cubic spline through the "
            "Super-resolve engine, so you can reproduce our tables on your data in one run.\n"
            "<b>CLASSICAL_FACTOR</b>: the factor of that degradation (default 2, above 1, at "
            "most 16); use the factor your result was super-resolved by.\n"
            "<b>LOW_RES</b>: optional low-resolution DEM to resample instead of the degraded "
            "reference (e.g. the input you super-resolved), in the evaluation grid's CRS.\n"
            "<b>STREAM_THRESHOLD</b> (advanced): a cell is a stream when at least this many "
            "cells drain through it (D8, as Terrain derivatives); default 1500 (str1500).\n"
            "<b>WINDOW</b> (advanced): the area shown in the hillshade pictures; default: the "
            "WINDOW_SIZE × WINDOW_SIZE window where the result's RMSE is largest.\n"
            "<b>WINDOW_SIZE</b> (advanced): side of that default window in cells (256).\n"
            "<b>OUTPUT_HTML</b>: the report: metrics table per region (best value per row "
            "marked ★), hillshades of reference, result and each comparison DEM over one "
            "window, the error map with a diverging ramp, error maps of every DEM in the "
            "window, error histograms and RMSE against slope. Its PNG pictures are written to "
            "a folder '<name>_files' beside it; an existing folder of that name is replaced "
            "only when it holds nothing but a report's pictures. All outputs appear together "
            "or not at all.\n"
            "<b>OUTPUT_ERROR</b>: Float32 GeoTIFF of result − reference on the evaluation "
            "grid (nodata outside the evaluated cells).\n"
            "<b>OUTPUT_TABLE</b>: CSV, one row per region and DEM, one column per metric.\n"
            "<b>OUTPUT_JSON</b>: the same with the alignment, PSNR peak, grid and warnings.\n\n"
            "Numeric outputs (for the result, all evaluated cells): RMSE, MAE, BIAS (mean of "
            "result − reference), P95 and MAX_ABS of |error| in metres (the DEM's vertical "
            "unit); SLOPE_RMSE and ASPECT_RMSE in degrees (Horn; aspect differences wrapped, "
            "359° vs 1° is 2°, flat cells without aspect left out); PROFILE_CURVATURE_RMSE and "
            "PLAN_CURVATURE_RMSE in 1/m (Evans–Young; plan curvature is unstable on nearly flat "
            "ground); STREAM_RECALL (share of reference stream cells with a result stream cell "
            "within one cell) and STREAM_PRECISION (share of result stream cells with a "
            "reference stream cell within one cell), NaN when there is no stream; SSIM "
            "(Gaussian window σ 1.5) and PSNR with PSNR_PEAK = the reference's elevation range "
            "over the evaluated cells as peak; PIXELS = cells counted.\n\n"
            "Stops with a clear error before any work when the DEM and the reference do not "
            "overlap, their CRSs cannot be transformed, the overlap is all nodata, or the "
            "mask/extent lies outside the overlap. Everything is held in memory "
            "(about 60 bytes per evaluated cell per DEM)."))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("DEM to judge")))
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, self.tr("Elevation band"), defaultValue=1,
            parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE, self.tr("Reference DEM (truth)")))
        self.add(QgsProcessingParameterBand(
            self.REFERENCE_BAND, self.tr("Reference elevation band"), defaultValue=1,
            parentLayerParameterName=self.REFERENCE, optional=True), advanced=True)
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.COMPARE, self.tr("Other DEMs to compare"),
            QgsProcessing.SourceType.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.MASK, self.tr("Evaluate inside these polygons"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Evaluate inside this extent"), optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.FILLED_MASK, self.tr("Filled-pixel mask from Void repair"),
            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.UNCERTAINTY, self.tr("Uncertainty of the DEM (1σ per cell)"), optional=True))
        self.add_enum(self.ALIGN, "Evaluation grid", ALIGN_TARGETS, ALIGN_TARGETS[0])
        self.add_enum(self.RESAMPLING, "Resampling onto the evaluation grid", ALIGN_METHODS,
                      "auto", advanced=True)
        self.addParameter(QgsProcessingParameterBoolean(
            self.COMPARE_CLASSICAL, self.tr("Also judge GDAL Lanczos, cubic and cubic spline "
                                            "baselines"), defaultValue=False))
        self.addParameter(QgsProcessingParameterNumber(
            self.CLASSICAL_FACTOR, self.tr("Baseline: degrade the reference by this factor"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=2.0, minValue=1.01,
            maxValue=16.0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.LOW_RES, self.tr("Baseline: low-resolution DEM instead"),
            optional=True))
        self.add_int(self.STREAM_THRESHOLD, "Stream threshold (cells)",
                     DEFAULT_STREAM_THRESHOLD, 1, 2 ** 31 - 1, advanced=True)
        self.add(QgsProcessingParameterExtent(
            self.WINDOW, self.tr("Picture window (default: largest error)"), optional=True),
            advanced=True)
        self.add_int(self.WINDOW_SIZE, "Default picture window size (cells)", 256, 16, 4096,
                     advanced=True)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, self.tr("Report (HTML)"), self.tr("HTML files (*.html)"),
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_ERROR, self.tr("Error raster (result − reference)"), optional=True,
            createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, self.tr("Metrics table (CSV)"), self.tr("CSV files (*.csv)"),
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_JSON, self.tr("Metrics (JSON)"), self.tr("JSON files (*.json)"),
            optional=True, createByDefault=False))
        for key, (_, label) in NUMBERS.items():
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputNumber(self.PSNR_PEAK, self.tr("PSNR peak (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.PIXELS, self.tr("Cells evaluated")))
        self.addOutput(QgsProcessingOutputNumber(
            self.WITHIN_1_SIGMA, self.tr("Share of cells with |error| ≤ UNCERTAINTY")))
        self.addOutput(QgsProcessingOutputNumber(
            self.WITHIN_2_SIGMA, self.tr("Share of cells with |error| ≤ 2 × UNCERTAINTY")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        ref = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        others = (self.parameterAsLayerList(parameters, self.COMPARE, context)
                  if self.given(parameters, self.COMPARE) else [])
        geoms, mask_crs = None, None
        if self.given(parameters, self.MASK):
            source = self.parameterAsSource(parameters, self.MASK, context)
            if source is not None:
                geoms = [json.loads(f.geometry().asJson())
                         for f in source.getFeatures(QgsFeatureRequest())
                         if f.hasGeometry() and not f.geometry().isEmpty()]
                mask_crs = source.sourceCrs().toWkt() if source.sourceCrs().isValid() else None
        extent = extent_crs = window = window_crs = None
        if self.given(parameters, self.EXTENT):
            r = self.parameterAsExtent(parameters, self.EXTENT, context)
            extent = (r.xMinimum(), r.yMinimum(), r.xMaximum(), r.yMaximum())
            crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            extent_crs = crs.toWkt() if crs.isValid() else None
        if self.given(parameters, self.WINDOW):
            r = self.parameterAsExtent(parameters, self.WINDOW, context)
            window = (r.xMinimum(), r.yMinimum(), r.xMaximum(), r.yMaximum())
            crs = self.parameterAsExtentCrs(parameters, self.WINDOW, context)
            window_crs = crs.toWkt() if crs.isValid() else None
        outputs = {key: self.parameterAsFileOutput(parameters, key, context) or None
                   for key in (self.OUTPUT_HTML, self.OUTPUT_TABLE, self.OUTPUT_JSON)}
        error_path = self.parameterAsOutputLayer(parameters, self.OUTPUT_ERROR, context) or None
        request = EvaluationRequest(
            input_path=raster_source(layer, self.INPUT),
            reference_path=raster_source(ref, self.REFERENCE),
            compare_paths=[raster_source(o, self.COMPARE) for o in others],
            input_name=input_name(layer), reference_name=input_name(ref),
            compare_names=[o.name() for o in others],
            band=self.parameterAsInt(parameters, self.BAND, context) or 1,
            reference_band=self.parameterAsInt(parameters, self.REFERENCE_BAND, context) or 1,
            align=self.parameterAsEnumString(parameters, self.ALIGN, context),
            resampling=self.parameterAsEnumString(parameters, self.RESAMPLING, context),
            mask_geometries=geoms, mask_crs=mask_crs, extent=extent, extent_crs=extent_crs,
            filled_mask_path=self.optional_layer(parameters, self.FILLED_MASK, context),
            uncertainty_path=self.optional_layer(parameters, self.UNCERTAINTY, context),
            compare_classical=self.parameterAsBoolean(parameters, self.COMPARE_CLASSICAL,
                                                      context),
            classical_factor=self.parameterAsDouble(parameters, self.CLASSICAL_FACTOR, context),
            low_res_path=self.optional_layer(parameters, self.LOW_RES, context),
            window=window, window_crs=window_crs,
            window_size=self.parameterAsInt(parameters, self.WINDOW_SIZE, context),
            stream_threshold=self.parameterAsInt(parameters, self.STREAM_THRESHOLD, context),
            output_html=outputs[self.OUTPUT_HTML], output_error=error_path,
            output_table=outputs[self.OUTPUT_TABLE], output_json=outputs[self.OUTPUT_JSON])
        monitor = monitor_for(feedback)
        with user_errors():
            result = evaluate(request, monitor)
        head = result.headline
        for key, (name, _) in NUMBERS.items():
            monitor.info(f"{key}: {head[name]:.6g}")
        out = {key: plain_number(head[name]) for key, (name, _) in NUMBERS.items()}
        out.update({self.PSNR_PEAK: plain_number(result.peak),
                    self.PIXELS: plain_number(head["n"]),
                    # NaN without an UNCERTAINTY input: numeric outputs stay numbers
                    self.WITHIN_1_SIGMA: plain_number(result.calibration.within_1)
                    if result.calibration else float("nan"),
                    self.WITHIN_2_SIGMA: plain_number(result.calibration.within_2)
                    if result.calibration else float("nan"),
                    self.OUTPUT_HTML: outputs[self.OUTPUT_HTML], self.OUTPUT_ERROR: error_path,
                    self.OUTPUT_TABLE: outputs[self.OUTPUT_TABLE],
                    self.OUTPUT_JSON: outputs[self.OUTPUT_JSON]})
        style_output(context, error_path or "", "error",
                     f"{request.input_name} error (− {request.reference_name})")
        if outputs[self.OUTPUT_HTML]:
            monitor.info(f"Report: {outputs[self.OUTPUT_HTML]}")
        return out
