"""The training loop: Adam, cosine schedule, best-on-validation checkpoints,
resume after a crash or cancel, AMP on CUDA, per-batch progress.

Validation figures are in metres against GDAL Lanczos on the same LR input
("the same pipeline"); the best epoch is the one with the lowest geometric
mean over validation patches of RMSE(model) / RMSE(Lanczos), which weighs a
lidar tile and a mountain range alike.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
from affine import Affine

from ..devices import import_torch, select_device
from ..errors import Cancelled, DemSrError
from ..evaluation.metrics import cell_size_m, horn_slope, psnr, ssim
from ..monitor import Monitor
from ..raster.warp import resample
from .degrade import DEGRADATIONS, degrade
from .losses import LOSSES, patch_scale, sr_loss
from .patches import PatchSet, load_raster, make_patch_set


# LR pixels of context around each training crop. Less than a model's full halo
# (which the engine needs for bit-identical tiles): the far context barely moves
# the loss, while a full halo (26 px for FastSR ×2) would make crops too big for
# a third of our training DEMs.
TRAIN_CONTEXT = 8


@dataclass
class TrainConfig:
    inputs: list[str]
    output_model: str
    architecture: str = "fast"
    scale: int = 2
    patch_size: int = 64          # HR pixels of loss per crop side (context comes on top)
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    degradation: str = "blockmean"
    init_weights: Optional[str] = None
    validation: float = 0.1
    device: str = "auto"
    loss: str = "l1"
    gradient_weight: float = 0.5
    steps_per_epoch: int = 100
    seed: int = 0
    hparams: dict = field(default_factory=dict)
    resume: bool = True
    coarser_copies: tuple = ()    # scale augmentation: also train on block-mean ×f copies


@dataclass
class TrainResult:
    model_path: str
    val_rmse_model: float
    val_rmse_baseline: float
    best_epoch: int
    epochs_done: int
    cancelled: bool
    metrics_csv: str
    curves_png: str
    history: list[dict]


def report_paths(model_path: str) -> tuple[str, str]:
    stem = os.path.splitext(model_path)[0]
    return stem + "_metrics.csv", stem + "_curves.png"


def resume_path(model_path: str) -> str:
    return model_path + ".resume"


class RunState:
    """What a training run keeps between epochs, and its resume file.

    One implementation for every trainer: the resume file is written after
    each epoch (atomically) and read back only when its signature (the
    settings that must match) is the same; `finish` turns a cancel into a
    kept-best-model warning, or removes the resume file after a full run.
    """

    def __init__(self, model_path: str, signature: str, torch):
        self.path, self.signature, self.torch = resume_path(model_path), signature, torch
        self.start_epoch = 0
        self.history: list[dict] = []
        self.best = (math.inf, math.nan, math.nan, -1)  # ratio, rmse, baseline, epoch
        self.initial = None  # the starting weights, while no epoch has beaten them

    def begin(self, model, m0: dict) -> None:
        """The starting model (untrained, or INIT_WEIGHTS) is the first candidate for best:
        a run whose epochs all validate worse than its start outputs the start."""
        self.history.append(m0)
        self.best = (m0["val_ratio"], m0["val_rmse"], m0["val_rmse_baseline"], 0)
        self.initial = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def end_epoch(self, epoch: int, losses: list, seconds: float, lr: float, m: dict,
                  model, opt, sched, save_best) -> tuple[dict, bool]:
        """A finished epoch (1-based): its history row, the model if best, the resume file."""
        row = dict(epoch=epoch, train_loss=float(np.mean(losses)), lr=lr,
                   seconds=round(seconds, 2), **m)
        self.history.append(row)
        better = self.improved(m, epoch)
        if better:
            save_best(epoch, m)
        self.save(epoch, model, opt, sched)
        return row, better

    def improved(self, m: dict, epoch: int) -> bool:
        """Record epoch `epoch` (1-based) as the best if it validates better."""
        if not m["val_ratio"] < self.best[0]:
            return False
        self.best = (m["val_ratio"], m["val_rmse"], m["val_rmse_baseline"], epoch)
        self.initial = None
        return True

    def resume(self, model, opt, sched, monitor: Monitor) -> None:
        if not os.path.exists(self.path):
            return
        try:
            state = self.torch.load(self.path, map_location="cpu", weights_only=True)
            if state.get("signature") != self.signature:
                monitor.warning("Found a resume file from a different training; starting anew.")
                return
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            self.start_epoch = int(state["epoch"])
            self.history = [dict(h) for h in state["history"]]
            self.best = tuple(state["best"])
            self.initial = state.get("initial")
            monitor.info(f"Resuming after epoch {self.start_epoch} from {self.path}.")
        except Exception as exc:  # noqa: BLE001 - a broken resume file must not block training
            monitor.warning(f"Cannot resume from {self.path} ({exc}); starting anew.")

    def save(self, epoch: int, model, opt, sched) -> None:
        self.torch.save(dict(signature=self.signature, epoch=epoch, model=model.state_dict(),
                             optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                             history=self.history, best=list(self.best), initial=self.initial),
                        self.path + ".tmp")
        os.replace(self.path + ".tmp", self.path)

    def finish(self, cancelled: bool, epoch: int, monitor: Monitor, model, save_best) -> None:
        """End of a run: on cancel keep the resume file; when no epoch beat the starting
        model, `save_best(0, metrics)` writes the starting weights (put back into `model`)."""
        if cancelled and self.history[-1]["epoch"] == 0:
            raise Cancelled("cancelled before the first epoch finished; no model was written")
        if self.best[3] == 0 and self.initial is not None:
            model.load_state_dict(self.initial)
            save_best(0, self.history[0])
            tried = min(h["val_rmse"] for h in self.history[1:])
            monitor.warning(
                f"No epoch validated better than the starting model (RMSE {self.best[1]:.4g} m; "
                f"the best epoch reached {tried:.4g} m), so the output is the starting model. "
                "Try a lower LEARNING_RATE, more epochs or more data.")
        if cancelled:
            monitor.warning(f"Cancelled in epoch {epoch + 1}; kept the best model so far (epoch "
                            f"{self.best[3]}). Run again with the same settings to resume.")
        elif os.path.exists(self.path):
            os.remove(self.path)

    def result(self, model_path: str, cancelled: bool, csv_path: str,
               png_path: str) -> "TrainResult":
        b = self.best
        return TrainResult(model_path, b[1], b[2], b[3], self.history[-1]["epoch"], cancelled,
                           csv_path, png_path, self.history)


def validation_record(m: dict) -> dict:
    """The validation figures a checkpoint records (finite val_* metrics, rounded)."""
    return {k: round(float(v), 6) for k, v in m.items()
            if k.startswith("val_") and math.isfinite(v)}


def start(cfg: TrainConfig, monitor: Monitor, what: str = "") -> tuple:
    """(torch, device) for a run: seeded, with the device choice logged."""
    torch = import_torch()
    torch.manual_seed(cfg.seed)
    choice = select_device(cfg.device)
    monitor.info(f"Training {what}on {choice.description}."
                 + (f" Note: {choice.note}." if choice.note else ""))
    return torch, choice.device


class Stepper:
    """One optimisation step; on CUDA with automatic mixed precision (autocast + GradScaler)."""

    def __init__(self, opt, device: str, torch):
        self.opt, self.torch = opt, torch
        self.amp = device.startswith("cuda")
        self.scaler = torch.cuda.amp.GradScaler() if self.amp else None

    def autocast(self):
        """Context for the forward pass (half precision where safe, on CUDA only)."""
        return self.torch.autocast("cuda", enabled=self.amp)

    def step(self, loss) -> float:
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return float(loss.detach())


def optimiser(model, cfg: TrainConfig, torch) -> tuple:
    """Adam with a cosine schedule down to 2 % of the learning rate."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs,
                                                       eta_min=cfg.learning_rate * 0.02)
    return opt, sched


def check_inputs_output(cfg: TrainConfig, what: str = "DEM") -> None:
    """The checks every trainer makes first: something to train on, a writable .pt path."""
    if not cfg.inputs:
        raise DemSrError(f"Give at least one {what} to train on.")
    if not cfg.output_model or not cfg.output_model.lower().endswith(".pt"):
        raise DemSrError("The output model file must end in .pt.")
    folder = os.path.dirname(os.path.abspath(cfg.output_model))
    if not os.path.isdir(folder):
        raise DemSrError(f"The output folder '{folder}' does not exist.")


def _check(cfg: TrainConfig) -> None:
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
    if not 0 < cfg.validation < 0.9:
        raise DemSrError("VALIDATION must be a share between 0 and 0.9 (e.g. 0.1).")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.steps_per_epoch < 1:
        raise DemSrError("EPOCHS, BATCH_SIZE and steps per epoch must be at least 1.")


def _signature(cfg: TrainConfig, arch: str, hparams: dict) -> str:
    """What must match for a resume file to continue this run."""
    keys = dict(inputs=sorted(os.path.abspath(p) for p in cfg.inputs), arch=arch,
                hparams=hparams, scale=cfg.scale, patch=cfg.patch_size, epochs=cfg.epochs,
                batch=cfg.batch_size, lr=cfg.learning_rate, deg=cfg.degradation,
                val=cfg.validation, loss=cfg.loss, gw=cfg.gradient_weight,
                steps=cfg.steps_per_epoch, seed=cfg.seed)
    if cfg.coarser_copies:
        keys["coarser"] = [int(f) for f in cfg.coarser_copies]
    return hashlib.sha1(json.dumps(keys, sort_keys=True).encode()).hexdigest()


class _Validator:
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


def _write_report(history: list[dict], csv_path: str, png_path: str,
                  baseline: str = "GDAL lanczos") -> None:
    if not history:
        return
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - the CSV is the report; the plot is a bonus
        return
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(ep, [h["train_loss"] for h in history])
    ax[0].set_title("training loss")
    ax[1].plot(ep, [h["val_rmse"] for h in history], label="model")
    ax[1].plot(ep, [h["val_rmse_baseline"] for h in history], "--", label=baseline)
    ax[1].set_title("validation RMSE (m)")
    ax[1].legend()
    ax[2].plot(ep, [h["val_ratio"] for h in history])
    ax[2].axhline(1.0, ls="--", c="grey")
    ax[2].set_title(f"RMSE model / {baseline} (geo. mean)")
    for a in ax:
        a.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def train(cfg: TrainConfig, monitor: Optional[Monitor] = None) -> TrainResult:
    """Train a model; returns the best-on-validation model saved at cfg.output_model."""
    from ..nets import checkpoint, registry

    monitor = monitor or Monitor()
    _check(cfg)
    torch, device = start(cfg, monitor)
    if cfg.init_weights:
        init = checkpoint.load(cfg.init_weights)
        if init.scale != cfg.scale:
            raise DemSrError(f"INIT_WEIGHTS is a ×{init.scale} model; this training is "
                             f"×{cfg.scale}. Use a model of the same scale.")
        arch, hparams, norm = init.architecture, init.hparams, init.normalisation
        if arch != cfg.architecture:
            monitor.warning(f"INIT_WEIGHTS is a '{arch}' model: fine-tuning that architecture "
                            f"instead of '{cfg.architecture}'.")
        model = init.build()
        monitor.info(f"Fine-tuning from {cfg.init_weights}.")
    else:
        arch = cfg.architecture
        hp = dict(cfg.hparams)
        if cfg.degradation != "blockmean" and "back_projection" in getattr(
                registry.get(arch), "defaults", {}):
            hp.setdefault("back_projection", 0)  # block-mean consistency would be wrong
        model = registry.build(arch, cfg.scale, hp)
        hparams, norm = dict(model.hparams), dict(model.norm)
    model = model.to(device).train()
    ctx = min(int(model.halo), TRAIN_CONTEXT)
    crop = cfg.patch_size + 2 * ctx * cfg.scale
    rasters = []
    for path in cfg.inputs:
        monitor.check()
        rasters.append(load_raster(path))
    patches = make_patch_set(rasters, crop, cfg.validation, cfg.seed, monitor.warning,
                             tuple(int(f) for f in cfg.coarser_copies))
    validator = _Validator(patches, cfg.scale, ctx, cfg.degradation, torch)
    n_params = sum(p.numel() for p in model.parameters())
    monitor.info(f"{arch} ×{cfg.scale}: {n_params} parameters, {ctx} LR px context; "
                 f"{len(patches.rasters) - patches.copies} DEMs"
                 + (f" (+{patches.copies} block-mean copies)" if patches.copies else "")
                 + f", {len(validator.ref)} validation blocks of "
                 f"{crop} px; LR by {cfg.degradation}. Validation baseline: GDAL lanczos "
                 f"RMSE {validator.base_rmse:.4g} m. PSNR peak: each reference patch's "
                 "elevation range.")

    opt, sched = optimiser(model, cfg, torch)
    stepper = Stepper(opt, device, torch)
    run = RunState(cfg.output_model, _signature(cfg, arch, hparams), torch)
    if cfg.resume:
        run.resume(model, opt, sched, monitor)
    history = run.history

    if not history:  # the untrained (or INIT_WEIGHTS) model is the reference point
        m0 = validator.metrics(validator.predict(model, device, cfg.batch_size))
        run.begin(model, dict(epoch=0, train_loss=math.nan, lr=cfg.learning_rate, seconds=0.0,
                              **m0))
        monitor.info(f"before training: val RMSE {m0['val_rmse']:.4g} m (ratio "
                     f"{m0['val_ratio']:.3f})")
    csv_path, png_path = report_paths(cfg.output_model)
    provenance = dict(data=[os.path.basename(p) for p in cfg.inputs], degradation=cfg.degradation,
                      seed=cfg.seed, patch_size=cfg.patch_size, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, loss=cfg.loss,
                      gradient_weight=cfg.gradient_weight, steps_per_epoch=cfg.steps_per_epoch,
                      epochs_planned=cfg.epochs, init_weights=os.path.basename(cfg.init_weights
                                                                              or ""),
                      coarser_copies=[int(f) for f in cfg.coarser_copies])

    def save_best(epochs: int, m: dict) -> None:
        checkpoint.save(checkpoint.from_model(model, model.interpolation, dict(
            provenance, epochs=epochs, validation=validation_record(m))), cfg.output_model)

    total = cfg.epochs * cfg.steps_per_epoch
    c = ctx * cfg.scale
    cancelled = False
    epoch = run.start_epoch
    for epoch in range(run.start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        t0, losses = time.perf_counter(), []
        for step in range(cfg.steps_per_epoch):
            if monitor.cancelled():
                cancelled = True
                break
            crops, _ = patches.sample(cfg.batch_size, rng)
            hr = torch.from_numpy(crops)[:, None].to(device)
            lr = degrade(hr, cfg.scale, cfg.degradation)
            target = hr[..., c:c + cfg.patch_size, c:c + cfg.patch_size]
            with stepper.autocast():
                pred = model(lr)[..., c:c + cfg.patch_size, c:c + cfg.patch_size]
            loss = sr_loss(pred.float(), target, patch_scale(lr), cfg.loss, cfg.gradient_weight)
            losses.append(stepper.step(loss))
            monitor.progress((epoch * cfg.steps_per_epoch + step + 1) / total)
        if cancelled:
            break
        sched.step()
        m = validator.metrics(validator.predict(model, device, cfg.batch_size))
        row, improved = run.end_epoch(epoch + 1, losses, time.perf_counter() - t0,
                                      opt.param_groups[0]["lr"], m, model, opt, sched, save_best)
        monitor.info(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, val RMSE "
                     f"{m['val_rmse']:.4g} m (lanczos {m['val_rmse_baseline']:.4g} m, ratio "
                     f"{m['val_ratio']:.3f}), slope RMSE {m['val_slope_rmse']:.3g}°, SSIM "
                     f"{m['val_ssim']:.4f}, PSNR {m['val_psnr']:.2f} dB"
                     + (" — best so far, saved" if improved else ""))
        _write_report(history, csv_path, png_path)
    run.finish(cancelled, epoch, monitor, model, save_best)
    return run.result(cfg.output_model, cancelled, csv_path, png_path)


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
