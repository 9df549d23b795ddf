"""demsr:train — train a super-resolution model on the user's own HR DEMs."""
from __future__ import annotations

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingParameterBoolean,
                       QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingOutputFile, QgsProcessingOutputHtml,
                       QgsProcessingOutputNumber)

from ..core.devices import DEVICE_CHOICES
from ..core.training.tasks import ARCHITECTURES, config_class, config_for, settings_of
from ..core.training.config import DSHATTrainConfig, SRTrainConfig
from ..core.raster.degrade import DEGRADATIONS
from ..core.training.losses import LOSSES
from ..core.training.learning_curves import write_report_page
from .common import (DemSrAlgorithm, monitor_for, plain_number, raster_source,
                     user_errors)


class TrainAlgorithm(DemSrAlgorithm):
    NAME = "train"
    DISPLAY_NAME = "Train DEM SR"
    HELP_ANCHOR = "train-dem-sr"

    INPUT = "INPUT"
    ARCHITECTURE = "ARCHITECTURE"
    SCALE = "SCALE"
    MAX_SCALE = "MAX_SCALE"
    NETWORK_SCALE = "NETWORK_SCALE"
    PATCH_SIZE = "PATCH_SIZE"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    DEGRADATION = "DEGRADATION"
    INIT_WEIGHTS = "INIT_WEIGHTS"
    VALIDATION = "VALIDATION"
    DEVICE = "DEVICE"
    LOSS = "LOSS"
    GRADIENT_WEIGHT = "GRADIENT_WEIGHT"
    STEPS_PER_EPOCH = "STEPS_PER_EPOCH"
    SEED = "SEED"
    REFERENCES = "REFERENCES"
    SPECTRAL = "SPECTRAL"
    AUXILIARY = "AUXILIARY"
    SYNTHETIC_AUXILIARY = "SYNTHETIC_AUXILIARY"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    EXPORT_ONNX = "EXPORT_ONNX"
    EXPORT_CONFIG = "EXPORT_CONFIG"
    EXPORT_ONLY = "EXPORT_ONLY"
    VAL_RMSE_MODEL = "VAL_RMSE_MODEL"
    VAL_RMSE_BASELINE = "VAL_RMSE_BASELINE"
    BEST_EPOCH = "BEST_EPOCH"
    METRICS_CSV = "METRICS_CSV"
    CURVES_PNG = "CURVES_PNG"
    REPORT_HTML = "REPORT_HTML"

    def shortHelpString(self):  # noqa: N802
        return self.with_labels(self.tr(
            "Trains a super-resolution model on your own high-resolution DEMs; use the .pt "
            "file in Super-resolve DEM (METHOD=model, MODEL=the file) at a factor it was "
            "trained for (it records them; another factor is refused with the list).\n\n"
            "<b>SCALE</b>: any factor in (1, 8], e.g. 2, 2.5 or 1.5625. At a non-integer factor "
            "(or with MAX_SCALE) the network is a ×s model, s = NETWORK_SCALE or the smallest "
            "integer ≥ the highest factor (INIT_WEIGHTS's scale when fine-tuning), trained "
            "through the step Super-resolve DEM finishes with: LR = the HR crop area-averaged "
            "onto a grid SCALE times coarser (partial cells by their overlap), and the ×s output "
            "area-averaged onto the HR grid for the loss.\n"
            "<b>MAX_SCALE</b> (advanced, optional): train one model for every factor from SCALE "
            "up to this (SCALE may then be 1: the model serves every factor above 1); each batch "
            "draws its own factor.\n"
            "<b>INPUT</b>: one or more HR DEMs. Low-resolution inputs are made from them "
            "with DEGRADATION (block mean = a coarse cell is the mean of its footprint, the "
            "realistic default; knn = mean of the HR cells within SCALE pixels of the coarse "
            "cell centre; bicubic; nearest). Random crops with flips/rotations, never "
            "touching nodata.\n"
            "<b>ARCHITECTURE</b>: 'fast' (default; CPU-friendly, works on the LR grid) or "
            "'gisr' (published GISR, 1.4 M parameters on the HR grid; slow without a GPU).\n"
            "<b>PATCH_SIZE</b>: HR pixels per training crop side, a multiple of SCALE; the "
            "model's context is added around it.\n"
            "<b>VALIDATION</b>: share of each DEM set aside as validation blocks, spatially "
            "separate from every training crop. Each epoch logs the training loss, the "
            "validation RMSE of the model and of GDAL Lanczos in metres, slope RMSE (Horn, "
            "degrees), SSIM and PSNR (peak = each reference patch's elevation range). The "
            "model of the epoch with the lowest RMSE relative to Lanczos is kept; the starting "
            "model (untrained, or INIT_WEIGHTS) counts as epoch 0, so a run that only makes "
            "it worse outputs it unchanged and says so (Best epoch = 0).\n"
            "<b>INIT_WEIGHTS</b>: fine-tune from an existing model of the same scale.\n"
            "<b>OUTPUT_MODEL</b>: the .pt file; next to it go NAME_metrics.csv, "
            "NAME_curves.png, NAME_report.html (the curves and the table, shown in the "
            "Results Viewer) and (EXPORT_ONNX, on by default) NAME.onnx, its ONNX copy that "
            "runs where only ONNX Runtime is installed (checked against PyTorch before it is "
            "written). If a run crashes or is cancelled, running it again with the "
            "same settings resumes from the last finished epoch (NAME.pt.resume). Cancelling "
            "stops within one batch and keeps the best model so far.\n\n"
            "Advanced: LOSS (l1 or mse on elevation, scaled by each patch's relief), "
            "GRADIENT_WEIGHT (weight of the slope term), STEPS_PER_EPOCH, SEED. "
            "EXPORT_CONFIG writes these settings as JSON, to train on a GPU server with "
            "several processes (torchrun, see the README's 'Bigger than one machine'); with "
            "EXPORT_ONLY the settings are checked and exported, and nothing is trained here.\n\n"
            "<b>ARCHITECTURE=dshat</b> trains a model for Void repair/SR (DS-HAT). With INPUT "
            "alone (HR DEMs), LR inputs are made by block mean ×1 and ×SCALE and radar-like "
            "synthetic voids (5–60 px) are cut into them. Loss {l1:g} × L1 + GRADIENT_WEIGHT × "
            "gradient L1 ({dshat_gw:g} when GRADIENT_WEIGHT is not given), void pixels weighted "
            "{void:g}×; LOSS and DEGRADATION do not apply. "
            "<b>REFERENCES</b> (dshat only): pairs mode — INPUT are your LR DEMs with their real "
            "voids and REFERENCES one HR reference DEM each, in the same order, on the target "
            "grid. <b>SPECTRAL</b> (dshat only): one raster per INPUT whose first four bands "
            "are Sentinel-2 B1–B4; the model then needs them when it runs. "
            "<b>AUXILIARY</b> (dshat only): one second DEM of the same area per INPUT (another "
            "product: any CRS, resolution and vertical offset), or <b>SYNTHETIC_AUXILIARY</b> "
            "to make one per training scene from the HR DEM (area-averaged ×2–×10, a smooth "
            "error, a bias, a sub-pixel shift, voids of its own); the model then starts from "
            "the delta surface fill, reads the auxiliary DEM in its support stream, and needs "
            "AUXILIARY when it runs.").format(
                l1=DSHATTrainConfig.l1_weight, dshat_gw=DSHATTrainConfig.gradient_weight,
                void=DSHATTrainConfig.void_weight))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUT, self.tr("High-resolution DEMs"), QgsProcessing.SourceType.TypeRaster))
        self.add_enum(self.ARCHITECTURE, "Architecture", list(ARCHITECTURES), "fast")
        self.addParameter(QgsProcessingParameterNumber(
            self.SCALE, self.tr("Scale factor"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=2, minValue=1, maxValue=8))  # 1 only as the start of a range
        self.add_int(self.PATCH_SIZE, "Patch size (HR pixels)", 64, 8, 1024)
        self.add_int(self.EPOCHS, "Epochs", 20, 1, 10000)
        self.add_int(self.BATCH_SIZE, "Batch size", 32, 1, 1024)
        self.addParameter(QgsProcessingParameterNumber(
            self.LEARNING_RATE, self.tr("Learning rate"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=1e-3, minValue=1e-7, maxValue=1.0))
        self.add_enum(self.DEGRADATION, "Degradation (how LR is made)", list(DEGRADATIONS),
                   "blockmean")
        self.addParameter(QgsProcessingParameterFile(
            self.INIT_WEIGHTS, self.tr("Initial weights (fine-tune from a model)"),
            QgsProcessingParameterFile.Behavior.File, fileFilter="PyTorch checkpoint (*.pt)",
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.VALIDATION, self.tr("Validation share"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=0.1, minValue=0.01, maxValue=0.9))
        self.add_enum(self.DEVICE, "Device", list(DEVICE_CHOICES), "auto")
        self.add_enum(self.LOSS, "Elevation loss", list(LOSSES), "l1", advanced=True)
        self.add(QgsProcessingParameterNumber(
            self.GRADIENT_WEIGHT, self.tr("Gradient (slope) loss weight (not set = {sr:g}; "
                                          "DS-HAT {dshat:g})").format(
                sr=SRTrainConfig.gradient_weight, dshat=DSHATTrainConfig.gradient_weight),
            QgsProcessingParameterNumber.Type.Double, defaultValue=None, optional=True,
            minValue=0.0, maxValue=100.0), advanced=True)
        self.add(QgsProcessingParameterNumber(
            self.MAX_SCALE, self.tr("Highest factor (train for the range SCALE to this)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=None, optional=True,
            minValue=1.0001, maxValue=8), advanced=True)
        self.add(QgsProcessingParameterNumber(
            self.NETWORK_SCALE, self.tr("Network scale (integer; not set = smallest integer "
                                        "≥ the highest factor)"),
            QgsProcessingParameterNumber.Type.Integer, defaultValue=None, optional=True,
            minValue=2, maxValue=16), advanced=True)
        self.add_int(self.STEPS_PER_EPOCH, "Batches per epoch", 100, 1, 100000, advanced=True)
        self.add_int(self.SEED, "Random seed", 0, 0, 2**31 - 1, advanced=True)
        for name, label in ((self.REFERENCES, "DS-HAT pairs: HR reference per input DEM"),
                            (self.SPECTRAL, "DS-HAT: Sentinel-2 raster per input DEM"),
                            (self.AUXILIARY, "DS-HAT: auxiliary DEM (second product) per input "
                                             "DEM")):
            self.add(QgsProcessingParameterMultipleLayers(
                name, self.tr(label), QgsProcessing.SourceType.TypeRaster, optional=True),
                advanced=True)
        self.add(QgsProcessingParameterBoolean(
            self.SYNTHETIC_AUXILIARY, self.tr("DS-HAT: synthesise an auxiliary DEM per "
                                              "training scene"), defaultValue=False),
                 advanced=True)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Trained model"), fileFilter="PyTorch checkpoint (*.pt)"))
        self.add(QgsProcessingParameterFileDestination(
            self.EXPORT_CONFIG, self.tr("Training configuration (JSON, for torchrun)"),
            fileFilter="JSON (*.json)", optional=True, createByDefault=False), advanced=True)
        self.add(QgsProcessingParameterBoolean(
            self.EXPORT_ONNX, self.tr("Also write NAME.onnx (runs with ONNX Runtime, no "
                                      "PyTorch)"), defaultValue=True), advanced=True)
        self.add(QgsProcessingParameterBoolean(
            self.EXPORT_ONLY, self.tr("Only export the configuration (do not train here)"),
            defaultValue=False), advanced=True)
        self.addOutput(QgsProcessingOutputNumber(self.VAL_RMSE_MODEL,
                                                 self.tr("Validation RMSE of the model (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_RMSE_BASELINE,
                                                 self.tr("Validation RMSE of GDAL Lanczos (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.BEST_EPOCH, self.tr("Best epoch")))
        self.addOutput(QgsProcessingOutputFile(self.METRICS_CSV, self.tr("Per-epoch metrics")))
        self.addOutput(QgsProcessingOutputFile(self.CURVES_PNG, self.tr("Learning curves")))
        self.addOutput(QgsProcessingOutputHtml(self.REPORT_HTML, self.tr(
            "Training report (learning curves, per-epoch metrics)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.training.train import run_training

        layers = lambda name: [raster_source(layer, name) for layer in  # noqa: E731
                               self.parameterAsLayerList(parameters, name, context)]
        shared = dict(
            inputs=layers(self.INPUT),
            output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            init_weights=self.parameterAsFile(parameters, self.INIT_WEIGHTS, context) or None,
            validation=self.parameterAsDouble(parameters, self.VALIDATION, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            steps_per_epoch=self.parameterAsInt(parameters, self.STEPS_PER_EPOCH, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            export_onnx=self.parameterAsBoolean(parameters, self.EXPORT_ONNX, context))
        gradient_weight = self.optional_number(parameters, self.GRADIENT_WEIGHT, context)
        if gradient_weight is not None:  # else the config's default
            shared["gradient_weight"] = gradient_weight
        architecture = self.parameterAsEnumString(parameters, self.ARCHITECTURE, context)
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        scale = int(scale) if scale.is_integer() else scale  # 2, not 2.0, in configs and logs
        max_scale = self.optional_number(parameters, self.MAX_SCALE, context)
        network_scale = self.optional_number(parameters, self.NETWORK_SCALE, context)
        loss = self.parameterAsEnumString(parameters, self.LOSS, context)
        degradation = self.parameterAsEnumString(parameters, self.DEGRADATION, context)
        settings = settings_of(config_class(architecture))
        if feedback is not None and "loss" not in settings and (
                loss != "l1" or degradation != "blockmean"):
            feedback.pushWarning("DS-HAT uses its own L1 + gradient loss and block-mean "
                                 "degradation; LOSS and DEGRADATION are ignored.")
        if feedback is not None and "max_factor" not in settings and (
                max_scale is not None or network_scale is not None):
            feedback.pushWarning("MAX_SCALE and NETWORK_SCALE do not apply to DS-HAT.")
        # every parameter by its setting's name; the config takes those it has
        offered = dict(architecture=architecture, scale=scale, max_factor=max_scale,
                       model_scale=int(network_scale or 0), degradation=degradation,
                       loss=loss, factors=[1, scale])
        offered.update((key, layers(name)) for key, name in (
            ("references", self.REFERENCES), ("spectral", self.SPECTRAL),
            ("auxiliary", self.AUXILIARY)) if key in settings)
        synthetic = self.parameterAsBoolean(parameters, self.SYNTHETIC_AUXILIARY, context)
        if "auxiliary" not in settings and (layers(self.AUXILIARY) or synthetic):
            raise QgsProcessingException(
                "AUXILIARY and SYNTHETIC_AUXILIARY train Void repair's DS-HAT; choose "
                "ARCHITECTURE=dshat, or clear them to train a super-resolution model.")
        offered["synthetic_auxiliary"] = synthetic
        cfg = config_for(architecture, {**shared, **offered})
        export = self.parameterAsFileOutput(parameters, self.EXPORT_CONFIG, context)
        if self.parameterAsBoolean(parameters, self.EXPORT_ONLY, context) and not export:
            raise QgsProcessingException("EXPORT_ONLY needs EXPORT_CONFIG: the .json file to "
                                         "write the training configuration to.")
        if export:
            from ..core.training.tasks import task_for
            from ..core.training.config_file import save_config

            with user_errors():
                task_for(cfg).check()  # the settings a server would refuse, now
                save_config(cfg, export)
            if feedback is not None:
                feedback.pushInfo(f"Training configuration written to {export}. To train on N "
                                  f"GPUs: torchrun --nproc_per_node=N -m "
                                  f"demsr train --config {export}")
            if self.parameterAsBoolean(parameters, self.EXPORT_ONLY, context):
                return {self.OUTPUT_MODEL: cfg.output_model, self.EXPORT_CONFIG: export}
        monitor = monitor_for(feedback)
        with user_errors():
            res = run_training(cfg, monitor)
            page = write_report_page(res.model_path, res.metrics_csv, res.curves_png,
                                     res.best_epoch)
        return {self.OUTPUT_MODEL: res.model_path,
                self.VAL_RMSE_MODEL: plain_number(res.val_rmse_model),
                self.VAL_RMSE_BASELINE: plain_number(res.val_rmse_baseline),
                self.BEST_EPOCH: plain_number(res.best_epoch),
                self.METRICS_CSV: res.metrics_csv, self.CURVES_PNG: res.curves_png,
                self.REPORT_HTML: page,
                **({self.EXPORT_CONFIG: export} if export else {})}
