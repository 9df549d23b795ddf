"""Super-resolution training ("fast", "gisr"): what the runner needs to train it.

LR inputs are made from random crops of the HR DEMs by `degradation`.
Validation figures are in metres against GDAL Lanczos on the same LR input
("the same pipeline"); the best epoch is the one with the lowest geometric
mean over validation patches of RMSE(model) / RMSE(Lanczos), which weighs a
lidar tile and a mountain range alike.

Any factor f in (1, 8], or a range of them: the network is a ×s model (s an integer
≥ f) trained through the step the engine finishes with, so training and inference
agree: the LR input is the HR crop area-averaged onto a grid f times coarser (partial
cells by their overlap, area.py), and the ×s output is area-averaged onto the HR grid
before the loss (or, with `finish` 'cubicspline', taken there by GDAL's cubic-spline
kernel, measured as a linear map). With a range, each batch draws its own f. The
checkpoint records the factors it was trained for and that finish ("factors", "finish"
in its provenance);
the engine serves exactly those (core/nets/coverage.py). A single integer factor with
s = f is the classic training (LR by `degradation`, no finishing step).
"""
from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np
from affine import Affine

from ..errors import DemSrError
from ..evaluation.metrics import psnr, ssim
from ..terrain.cellsize import cell_size_m
from ..terrain.surface import horn_slope
from ..monitor import Monitor
from ..raster.warp import resample
from ..nets import coverage
from .area import apply, area_matrix, coarse_size, finish_matrix, to_torch
from .config import SRTrainConfig
from ..raster.degrade import DEGRADATIONS, degrade
from .losses import LOSSES, patch_scale, sr_loss
from .patches import PatchSet, load_raster, make_patch_set
from .runner import Task, check_inputs_output, check_run_settings

# LR pixels of context around each training crop. Less than a model's full halo
# (which the engine needs for bit-identical tiles): the far context barely moves
# the loss, while a full halo (26 px for FastSR ×2) would make crops too big for
# a third of our training DEMs.
TRAIN_CONTEXT = 8


MAX_FACTOR = 8.0


class Factors:
    """The factors a run trains for ([lo, hi]) and its network's integer scale."""

    def __init__(self, lo: float, hi: float, net: int, finish: str = "average"):
        self.lo, self.hi, self.net, self.finish = float(lo), float(hi), int(net), finish
        # the classic training: one integer factor, the network's own
        self.plain = self.lo == self.hi == self.net
        self._pairs: dict = {}

    def draw(self, rng: np.random.Generator) -> float:
        if self.lo == self.hi:
            return self.lo
        f = float(rng.uniform(self.lo, self.hi))
        # GDAL-kernel finishes are measured per factor (area.gdal_matrix): a 1/64 lattice
        return f if self.finish == "average" else min(max(round(f * 64) / 64, self.lo), self.hi)

    def validation(self) -> list[float]:
        """Fixed factors the validation runs at: the factor, or the range's quartiles (its
        inside, where a range model is used; its ends are often integer factors that a model
        of exactly that scale serves better)."""
        if self.lo == self.hi:
            return [self.lo]
        return [round(self.lo + q * (self.hi - self.lo), 6) for q in (0.25, 0.5, 0.75)]

    def crop(self, patch: int, ctx: int) -> int:
        """HR pixels per crop side: the loss patch, ctx LR px each side at the highest
        factor, and room for LR cells that do not tile the crop exactly."""
        if self.plain:
            return patch + 2 * ctx * self.net
        return patch + 2 * math.ceil(ctx * self.hi) + math.ceil(self.hi) + 2

    def pair(self, crop: int, ctx: int, patch: int, factor: float):
        """(LR map (n, crop), finishing map (patch, n·s), first HR row of the loss patch)."""
        key = (crop, ctx, patch, factor)
        if key not in self._pairs:
            self._pairs[key] = self._pair(crop, ctx, patch, factor)
        return self._pairs[key]

    def _pair(self, crop: int, ctx: int, patch: int, factor: float):
        n = coarse_size(crop, factor)
        first = math.ceil(ctx * factor - 1e-9)
        if first + patch > (n - ctx) * factor + 1e-6:
            raise DemSrError(f"Internal error: a {crop}-px crop is too small at ×{factor:g}.")
        return (area_matrix(crop, n, factor),
                # at the network's own factor the engine takes its output as it is
                finish_matrix(n, self.net, factor, first, patch,
                              "average" if factor == self.net else self.finish), first)

    def record(self) -> dict:
        """What the checkpoint says it serves (coverage.py reads it back)."""
        if self.plain:
            lo, hi = coverage.default_range(self.net)
            return dict(factors=[lo, hi], finish=coverage.AUTO)
        return dict(factors=[self.lo, self.hi], finish=self.finish)

    def text(self) -> str:
        f = f"×{self.lo:g}" if self.lo == self.hi else f"×{self.lo:g}–×{self.hi:g}"
        how = "area-average" if self.finish == "average" else self.finish
        return f if self.plain else f"{f} (network ×{self.net}, {how} finish)"


class SRValidator:
    """Fixed validation crops at each validation factor, their Lanczos baseline and the
    metrics of a model (a geometric mean over crops and factors)."""

    def __init__(self, patches: PatchSet, factors: Factors, ctx: int, patch: int,
                 degradation: str, torch):
        self.torch = torch
        crops, raster_idx = patches.validation()
        hr = torch.from_numpy(crops)[:, None]
        # a non-zero origin: GDAL reads the (0, 1, 0, 0, 0, -1)-like default as "no transform"
        hr_t = Affine(1, 0, 0, 0, -1, 1e4)
        self.groups, refs, bases, self.cells = [], [], [], []
        cells = []
        for i in raster_idx:
            r = patches.rasters[i]
            cells.append(cell_size_m(r.res, r.geographic, r.lat))
        for f in ([factors.net] if factors.plain else factors.validation()):
            if factors.plain:
                lr, fin, c = degrade(hr, f, degradation), None, ctx * f
            else:
                a, fin_np, c = factors.pair(crops.shape[-1], ctx, patch, f)
                lr, fin = apply(hr, to_torch(a), to_torch(a)), to_torch(fin_np)
            p = patch
            self.groups.append((lr, fin, c, p))
            refs.append(crops[:, c:c + p, c:c + p].astype(np.float64))
            lr_t = Affine(f, 0, 0, 0, -f, 1e4)
            bases.append(np.stack([resample(x, lr_t, crops.shape[-2:], hr_t, "lanczos")
                                   for x in lr[:, 0].numpy()])[:, c:c + p, c:c + p])
            self.cells += cells
        self.ref = np.concatenate(refs)
        self.baseline = np.concatenate(bases)
        self.base_rmse_each = np.sqrt(((self.baseline - self.ref) ** 2).mean(axis=(1, 2)))
        self.base_rmse = float(np.sqrt(((self.baseline - self.ref) ** 2).mean()))

    def predict(self, model, device: str, batch: int) -> np.ndarray:
        torch = self.torch
        out = []
        model.eval()
        with torch.inference_mode():
            for lr, fin, c, p in self.groups:
                for i in range(0, len(lr), batch):
                    y = model(lr[i:i + batch].to(device)).float()
                    if fin is None:
                        y = y[:, 0, c:c + p, c:c + p]
                    else:
                        f = fin.to(device)
                        y = apply(y[:, 0], f, f)
                    out.append(y.cpu().numpy())
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
        lo = float(cfg.scale)
        hi = lo if cfg.max_factor is None else float(cfg.max_factor)
        # a range may start at ×1 (it serves the factors above it); one factor must be above 1
        if not ((1 < lo or (lo == 1 and hi > lo)) and lo <= hi <= MAX_FACTOR):
            raise DemSrError(f"Scale {lo:g}" + ("" if hi == lo else f"–{hi:g}") + " is not a "
                             f"factor (range) within (1, {MAX_FACTOR:g}]; the highest factor "
                             "must not be below SCALE.")
        if cfg.model_scale and not math.ceil(hi - 1e-9) <= cfg.model_scale <= 16:
            raise DemSrError(f"A ×{cfg.model_scale} network cannot serve ×{hi:g}: its scale "
                             "must be at least the highest factor (and at most 16).")
        self.lo, self.hi = lo, hi
        DEGRADATIONS.get(cfg.degradation)  # an unknown name: DemSrError naming the known ones
        if cfg.finish not in coverage.FINISH_METHODS:
            raise DemSrError(f"Unknown finishing step '{cfg.finish}'; use one of "
                             f"{', '.join(coverage.FINISH_METHODS)}.")
        LOSSES.get(cfg.loss)
        if not cfg.init_weights:  # else the network's scale is known once it is read
            self._factors(None)
        check_run_settings(cfg)

    def _factors(self, init_scale: Optional[int]) -> Factors:
        """The network scale: MODEL_SCALE, else INIT_WEIGHTS's, else ⌈highest factor⌉."""
        net = self.cfg.model_scale or init_scale or math.ceil(self.hi - 1e-9)
        if init_scale is not None and init_scale != net:
            raise DemSrError(f"INIT_WEIGHTS is a ×{init_scale} model; this training needs a "
                             f"×{net} network. Use a model of that scale.")
        if net < self.hi - 1e-9:
            raise DemSrError(f"INIT_WEIGHTS is a ×{net} model: it cannot serve ×{self.hi:g} "
                             "(a network's scale must be at least the highest factor).")
        fs, cfg = Factors(self.lo, self.hi, net, self.cfg.finish), self.cfg
        if fs.plain:
            if cfg.patch_size % net or cfg.patch_size < 4 * net:
                raise DemSrError(f"PATCH_SIZE must be a multiple of the scale ({net}) and at "
                                 f"least {4 * net} px.")
            return fs
        if cfg.patch_size < 4 * self.hi:
            raise DemSrError(f"PATCH_SIZE must be at least {math.ceil(4 * self.hi)} px (4 × "
                             "the highest factor).")
        if cfg.degradation != "blockmean":
            raise DemSrError(f"Training {fs.text()} makes LR by area average (DEGRADATION "
                             "'blockmean'); the other degradations need one integer factor "
                             "equal to the network's scale.")
        return fs

    def build(self, monitor: Monitor):
        """The untrained network, or INIT_WEIGHTS (whose architecture wins, with a warning)."""
        from ..nets import checkpoint, registry

        cfg = self.cfg
        if cfg.init_weights:
            init = checkpoint.load(cfg.init_weights, role="INIT_WEIGHTS")
            self.factors = self._factors(int(init.scale))
            self.arch, self.hparams = init.architecture, init.hparams
            if self.arch != cfg.architecture:
                monitor.warning(f"INIT_WEIGHTS is a '{self.arch}' model: fine-tuning that "
                                f"architecture instead of '{cfg.architecture}'.")
            model = init.build()
            monitor.info(f"Fine-tuning from {cfg.init_weights}.")
            return model
        self.factors = self._factors(None)
        self.arch = cfg.architecture
        hp = dict(cfg.hparams)
        if cfg.degradation != "blockmean" and "back_projection" in getattr(
                registry.get(self.arch), "defaults", {}):
            hp.setdefault("back_projection", 0)  # block-mean consistency would be wrong
        model = registry.build(self.arch, self.factors.net, hp)
        self.hparams = dict(model.hparams)
        return model

    def prepare(self, model, monitor: Monitor) -> None:
        """Patches (validation blocks apart) and the validator; logs what the run has."""
        cfg, fs = self.cfg, self.factors
        self.ctx = min(int(model.halo), TRAIN_CONTEXT)
        self.crop = crop = fs.crop(cfg.patch_size, self.ctx)
        rasters = []
        for path in cfg.inputs:
            monitor.check()
            rasters.append(load_raster(path))
        self.patches = make_patch_set(rasters, crop, cfg.validation, cfg.seed, monitor.warning,
                                      tuple(int(f) for f in cfg.coarser_copies))
        self.validator = SRValidator(self.patches, fs, self.ctx, cfg.patch_size,
                                     cfg.degradation, self.torch)
        n_params = sum(p.numel() for p in model.parameters())
        copies = self.patches.copies
        n_val = len(self.validator.ref) // len(self.validator.groups)
        at = "" if fs.plain else " at " + ", ".join(f"×{f:g}" for f in fs.validation())
        monitor.info(f"{self.arch} {fs.text()}: {n_params} parameters, {self.ctx} LR px "
                     f"context; {len(self.patches.rasters) - copies} DEMs"
                     + (f" (+{copies} block-mean copies)" if copies else "")
                     + f", {n_val} validation blocks of {crop} px{at}; LR by "
                     + (cfg.degradation if fs.plain else "area average") + ". Validation "
                     f"baseline: GDAL lanczos RMSE {self.validator.base_rmse:.4g} m. PSNR peak: "
                     "each reference patch's elevation range.")

    def resolved(self) -> dict:
        return dict(architecture=self.arch, hparams=self.hparams)

    def validate(self, model) -> dict:
        v = self.validator
        return v.metrics(v.predict(model, self.device, self.cfg.batch_size))

    def loss(self, model, rng: np.random.Generator, autocast):
        cfg, torch, fs = self.cfg, self.torch, self.factors
        p = cfg.patch_size
        factor = fs.draw(rng)  # draws nothing for one factor
        crops, _ = self.patches.sample(cfg.batch_size, rng)
        hr = torch.from_numpy(np.ascontiguousarray(crops[self.share]))[:, None].to(self.device)
        if fs.plain:
            c = self.ctx * fs.net
            lr = degrade(hr, fs.net, cfg.degradation)
            with autocast():
                out = model(lr)[..., c:c + p, c:c + p]
            pred = out.float()
        else:
            a_np, fin_np, c = fs.pair(self.crop, self.ctx, p, factor)
            a, fin = to_torch(a_np, self.device), to_torch(fin_np, self.device)
            lr = apply(hr, a, a)
            with autocast():
                out = model(lr)
            pred = apply(out.float(), fin, fin)  # the engine's finishing step, differentiable
        return sr_loss(pred, hr[..., c:c + p, c:c + p], patch_scale(lr), cfg.loss,
                       cfg.gradient_weight)

    def provenance(self) -> dict:
        cfg = self.cfg
        return dict(data=[os.path.basename(p) for p in cfg.inputs], degradation=cfg.degradation,
                    seed=cfg.seed, patch_size=cfg.patch_size, batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate, loss=cfg.loss,
                    gradient_weight=cfg.gradient_weight, steps_per_epoch=cfg.steps_per_epoch,
                    epochs_planned=cfg.epochs,
                    init_weights=os.path.basename(cfg.init_weights or ""),
                    coarser_copies=[int(f) for f in cfg.coarser_copies],
                    **self.factors.record())

    def describe(self, m: dict, start: bool = False) -> str:
        if start:
            return f"val RMSE {m['val_rmse']:.4g} m (ratio {m['val_ratio']:.3f})"
        return (f"val RMSE {m['val_rmse']:.4g} m (lanczos {m['val_rmse_baseline']:.4g} m, ratio "
                f"{m['val_ratio']:.3f}), slope RMSE {m['val_slope_rmse']:.3g}°, SSIM "
                f"{m['val_ssim']:.4f}, PSNR {m['val_psnr']:.2f} dB")
