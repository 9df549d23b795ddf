"""Super-resolution training ("fast", "gisr"): what the runner needs to train it.

LR inputs are made from random crops of the HR DEMs by `degradation`.
Validation figures are in metres against GDAL Lanczos on the same LR input
("the same pipeline"); the best epoch is the one with the lowest geometric
mean over validation patches of RMSE(model) / RMSE(Lanczos), which weighs a
lidar tile and a mountain range alike.
"""
from __future__ import annotations

import math
import os

import numpy as np
from affine import Affine

from ..errors import DemSrError
from ..evaluation.metrics import cell_size_m, horn_slope, psnr, ssim
from ..monitor import Monitor
from ..raster.warp import resample
from .config import SRTrainConfig
from .degrade import DEGRADATIONS, degrade
from .losses import LOSSES, patch_scale, sr_loss
from .patches import PatchSet, load_raster, make_patch_set
from .runner import Task, check_inputs_output, check_run_settings

# LR pixels of context around each training crop. Less than a model's full halo
# (which the engine needs for bit-identical tiles): the far context barely moves
# the loss, while a full halo (26 px for FastSR ×2) would make crops too big for
# a third of our training DEMs.
TRAIN_CONTEXT = 8


class SRValidator:
    """Fixed validation crops, their Lanczos baseline and the metrics of a model."""

    def __init__(self, patches: PatchSet, scale: int, ctx: int, degradation: str, torch):
        self.torch = torch
        crops, self.raster_idx = patches.validation()
        self.hr = torch.from_numpy(crops)[:, None]
        self.lr = degrade(self.hr, scale, degradation)
        c = ctx * scale
        self.c, self.p = c, crops.shape[-1] - 2 * c
        self.ref = crops[:, c:c + self.p, c:c + self.p].astype(np.float64)
        self.cells = []
        for i in self.raster_idx:
            r = patches.rasters[i]
            self.cells.append(cell_size_m(r.res, r.geographic, r.lat))
        lr_np = self.lr[:, 0].numpy()
        # a non-zero origin: GDAL reads the (0, 1, 0, 0, 0, -1)-like default as "no transform"
        hr_t, lr_t = Affine(1, 0, 0, 0, -1, 1e4), Affine(scale, 0, 0, 0, -scale, 1e4)
        self.baseline = np.stack([resample(x, lr_t, crops.shape[-2:], hr_t, "lanczos")
                                  for x in lr_np])[:, c:c + self.p, c:c + self.p]
        self.base_rmse_each = np.sqrt(((self.baseline - self.ref) ** 2).mean(axis=(1, 2)))
        self.base_rmse = float(np.sqrt(((self.baseline - self.ref) ** 2).mean()))

    def predict(self, model, device: str, batch: int) -> np.ndarray:
        torch = self.torch
        out = []
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(self.lr), batch):
                y = model(self.lr[i:i + batch].to(device)).float().cpu().numpy()
                out.append(y[:, 0, self.c:self.c + self.p, self.c:self.c + self.p])
        model.train()
        return np.concatenate(out)

    def metrics(self, pred: np.ndarray) -> dict:
        err = pred.astype(np.float64) - self.ref
        rmse_each = np.sqrt((err ** 2).mean(axis=(1, 2)))
        ratio = np.exp(np.mean(np.log(np.maximum(rmse_each, 1e-9) /
                                      np.maximum(self.base_rmse_each, 1e-9))))
        slope_se, n, ss, ps = 0.0, 0, [], []
        for k, (dx, dy) in enumerate(self.cells):
            sp, sr = horn_slope(pred[k], dx, dy), horn_slope(self.ref[k], dx, dy)
            slope_se += float(((sp - sr)[1:-1, 1:-1] ** 2).sum())
            n += sp[1:-1, 1:-1].size
            rng = float(self.ref[k].max() - self.ref[k].min()) or 1.0
            ss.append(ssim(pred[k], self.ref[k], rng))
            ps.append(psnr(pred[k], self.ref[k]))
        return dict(val_rmse=float(np.sqrt((err ** 2).mean())), val_rmse_baseline=self.base_rmse,
                    val_ratio=float(ratio), val_slope_rmse=math.sqrt(slope_se / max(n, 1)),
                    val_ssim=float(np.mean(ss)), val_psnr=float(np.mean(ps)))


class SRTask(Task):
    """An SR network trained on degraded crops of HR DEMs."""

    cfg: SRTrainConfig
    baseline = "GDAL lanczos"

    def check(self) -> None:
        cfg = self.cfg
        check_inputs_output(cfg, "high-resolution DEM")
        if not 2 <= cfg.scale <= 8:
            raise DemSrError(f"Scale {cfg.scale} is outside 2–8.")
        if cfg.patch_size % cfg.scale or cfg.patch_size < 4 * cfg.scale:
            raise DemSrError(f"PATCH_SIZE must be a multiple of the scale ({cfg.scale}) and at "
                             f"least {4 * cfg.scale} px.")
        if cfg.degradation not in DEGRADATIONS:
            raise DemSrError(f"Unknown degradation '{cfg.degradation}'.")
        if cfg.loss not in LOSSES:
            raise DemSrError(f"Unknown loss '{cfg.loss}'.")
        check_run_settings(cfg)

    def build(self, monitor: Monitor):
        """The untrained network, or INIT_WEIGHTS (whose architecture wins, with a warning)."""
        from ..nets import checkpoint, registry

        cfg = self.cfg
        if cfg.init_weights:
            init = checkpoint.load(cfg.init_weights)
            if init.scale != cfg.scale:
                raise DemSrError(f"INIT_WEIGHTS is a ×{init.scale} model; this training is "
                                 f"×{cfg.scale}. Use a model of the same scale.")
            self.arch, self.hparams = init.architecture, init.hparams
            if self.arch != cfg.architecture:
                monitor.warning(f"INIT_WEIGHTS is a '{self.arch}' model: fine-tuning that "
                                f"architecture instead of '{cfg.architecture}'.")
            model = init.build()
            monitor.info(f"Fine-tuning from {cfg.init_weights}.")
            return model
        self.arch = cfg.architecture
        hp = dict(cfg.hparams)
        if cfg.degradation != "blockmean" and "back_projection" in getattr(
                registry.get(self.arch), "defaults", {}):
            hp.setdefault("back_projection", 0)  # block-mean consistency would be wrong
        model = registry.build(self.arch, cfg.scale, hp)
        self.hparams = dict(model.hparams)
        return model

    def prepare(self, model, monitor: Monitor) -> None:
        """Patches (validation blocks apart) and the validator; logs what the run has."""
        cfg = self.cfg
        self.ctx = min(int(model.halo), TRAIN_CONTEXT)
        crop = cfg.patch_size + 2 * self.ctx * cfg.scale
        rasters = []
        for path in cfg.inputs:
            monitor.check()
            rasters.append(load_raster(path))
        self.patches = make_patch_set(rasters, crop, cfg.validation, cfg.seed, monitor.warning,
                                      tuple(int(f) for f in cfg.coarser_copies))
        self.validator = SRValidator(self.patches, cfg.scale, self.ctx, cfg.degradation,
                                     self.torch)
        n_params = sum(p.numel() for p in model.parameters())
        copies = self.patches.copies
        monitor.info(f"{self.arch} ×{cfg.scale}: {n_params} parameters, {self.ctx} LR px "
                     f"context; {len(self.patches.rasters) - copies} DEMs"
                     + (f" (+{copies} block-mean copies)" if copies else "")
                     + f", {len(self.validator.ref)} validation blocks of "
                     f"{crop} px; LR by {cfg.degradation}. Validation baseline: GDAL lanczos "
                     f"RMSE {self.validator.base_rmse:.4g} m. PSNR peak: each reference patch's "
                     "elevation range.")

    def resolved(self) -> dict:
        return dict(architecture=self.arch, hparams=self.hparams)

    def validate(self, model) -> dict:
        v = self.validator
        return v.metrics(v.predict(model, self.device, self.cfg.batch_size))

    def loss(self, model, rng: np.random.Generator, autocast):
        cfg, torch = self.cfg, self.torch
        c, p = self.ctx * cfg.scale, cfg.patch_size
        crops, _ = self.patches.sample(cfg.batch_size, rng)
        hr = torch.from_numpy(np.ascontiguousarray(crops[self.share]))[:, None].to(self.device)
        lr = degrade(hr, cfg.scale, cfg.degradation)
        target = hr[..., c:c + p, c:c + p]
        with autocast():
            pred = model(lr)[..., c:c + p, c:c + p]
        return sr_loss(pred.float(), target, patch_scale(lr), cfg.loss, cfg.gradient_weight)

    def provenance(self) -> dict:
        cfg = self.cfg
        return dict(data=[os.path.basename(p) for p in cfg.inputs], degradation=cfg.degradation,
                    seed=cfg.seed, patch_size=cfg.patch_size, batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate, loss=cfg.loss,
                    gradient_weight=cfg.gradient_weight, steps_per_epoch=cfg.steps_per_epoch,
                    epochs_planned=cfg.epochs,
                    init_weights=os.path.basename(cfg.init_weights or ""),
                    coarser_copies=[int(f) for f in cfg.coarser_copies])

    def describe(self, m: dict, start: bool = False) -> str:
        if start:
            return f"val RMSE {m['val_rmse']:.4g} m (ratio {m['val_ratio']:.3f})"
        return (f"val RMSE {m['val_rmse']:.4g} m (lanczos {m['val_rmse_baseline']:.4g} m, ratio "
                f"{m['val_ratio']:.3f}), slope RMSE {m['val_slope_rmse']:.3g}°, SSIM "
                f"{m['val_ssim']:.4f}, PSNR {m['val_psnr']:.2f} dB")
