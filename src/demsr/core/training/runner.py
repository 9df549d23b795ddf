"""The training runner: one skeleton for every task (SR, DS-HAT).

Adam with a cosine schedule, AMP on CUDA, the starting model as epoch 0,
best-on-validation checkpoints, resume after a crash or cancel, per-batch
progress, the per-epoch log line and the CSV/PNG report. What differs
between trainings (checks, model, data, loss, validation metric, provenance,
wording) is the task's (a `Task`: sr_task.py, dshat_task.py); the best epoch
is the one with the lowest `val_ratio` of the task's validator.
"""
from __future__ import annotations

import math
import os
import time
from typing import Optional

import numpy as np

from ..devices import import_torch, select_device
from ..errors import Cancelled, DemSrError
from ..monitor import Monitor
from ..paths import check_distinct_paths
from ..raster.space import check_space
from .config import TrainConfig
from .learning_curves import curve_paths, write_curves
from .lock import lock_path
from .state import RunState, TrainResult, resume_path, resume_signature, validation_record


def side_files(model_path: str) -> dict[str, str]:
    """Every file a training writes beside OUTPUT_MODEL, by what it is: none may be an
    input (the learning-curve picture once overwrote one)."""
    csv_path, png_path = curve_paths(model_path)
    return {"the per-epoch metrics (OUTPUT_MODEL_metrics.csv)": csv_path,
            "the learning curves (OUTPUT_MODEL_curves.png)": png_path,
            "the resume file (OUTPUT_MODEL.resume)": resume_path(model_path),
            "the lock (OUTPUT_MODEL.lock)": lock_path(model_path)}


def training_outputs(cfg: TrainConfig) -> dict[str, str]:
    """Every file a training writes, by parameter or what it is."""
    return {"OUTPUT_MODEL": cfg.output_model, **side_files(cfg.output_model)}


def training_inputs(cfg: TrainConfig) -> dict:
    """Every file a training reads, by parameter."""
    return {"INPUT": cfg.inputs, "INIT_WEIGHTS": cfg.init_weights,
            "REFERENCES": getattr(cfg, "references", None),
            "SPECTRAL": getattr(cfg, "spectral", None),
            "AUXILIARY": getattr(cfg, "auxiliary", None)}


def check_inputs_output(cfg: TrainConfig, what: str = "DEM") -> None:
    """The checks every task makes first: something to train on, a writable .pt path whose
    side files are no input."""
    if not cfg.inputs:
        raise DemSrError(f"Give at least one {what} to train on.")
    if not cfg.output_model or not cfg.output_model.lower().endswith(".pt"):
        raise DemSrError("The output model file must end in .pt.")
    folder = os.path.dirname(os.path.abspath(cfg.output_model))
    if not os.path.isdir(folder):
        raise DemSrError(f"The output folder '{folder}' does not exist.")
    check_distinct_paths(training_inputs(cfg), training_outputs(cfg))


def check_run_settings(cfg: TrainConfig) -> None:
    """The checks every task makes last: a validation share, at least one step, numbers
    that are numbers."""
    if not 0 < cfg.validation <= 0.9:
        raise DemSrError("VALIDATION must be a share between 0 and 0.9 (e.g. 0.1).")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.steps_per_epoch < 1:
        raise DemSrError("EPOCHS, BATCH_SIZE and steps per epoch must be at least 1.")
    if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
        raise DemSrError(f"LEARNING_RATE must be a number above 0 (got {cfg.learning_rate}); "
                         "1e-3 is a good start.")
    weight = getattr(cfg, "gradient_weight", 0.0)
    if not (math.isfinite(weight) and weight >= 0):
        raise DemSrError(f"GRADIENT_WEIGHT must be a number of at least 0 (got {weight}).")


# Bytes a training writes beside OUTPUT_MODEL per weight, at the peak: the model and its
# temporary copy (4 + 4), the resume file (weights and Adam's two moments) and its
# temporary (12 + 12); plus the report and headers.
BYTES_PER_WEIGHT = 32
REPORT_BYTES = 5_000_000


def check_room(model, cfg: TrainConfig) -> None:
    """Before the first epoch: the model, the resume file and the report fit on the disk."""
    weights = sum(p.numel() for p in model.parameters())
    check_space([(cfg.output_model, BYTES_PER_WEIGHT * weights + REPORT_BYTES)],
                "the trained model, its resume file and report")


def check_loss(loss: float, epoch: int, cfg: TrainConfig) -> None:
    """A training whose loss is NaN or infinite has diverged: stop now, loudly."""
    if not math.isfinite(loss):
        raise DemSrError(
            f"Training diverged in epoch {epoch}: the training loss is {loss} (the weights "
            f"became NaN or infinite). Lower LEARNING_RATE (now {cfg.learning_rate:g}), or "
            "check the input DEMs for absurd values. "
            + _kept(cfg.output_model))


def check_validation(m: dict, epoch: int, cfg: TrainConfig) -> None:
    """A validation score (val_ratio, which picks the best model) that is not a number:
    the model gives NaN or infinite elevations. Stop, loudly. (A task may leave one RMSE NaN
    when it has no cell to measure, e.g. DS-HAT without voids in a validation crop.)"""
    if not math.isfinite(m.get("val_ratio", math.nan)):
        when = "of the starting model" if epoch == 0 else f"after epoch {epoch}"
        raise DemSrError(
            f"The validation RMSE {when} is {m.get('val_rmse')} (ratio to the baseline "
            f"{m.get('val_ratio')}): the model gives NaN or infinite elevations. Lower "
            f"LEARNING_RATE (now {cfg.learning_rate:g}), check INIT_WEIGHTS and the input "
            "DEMs for absurd values. " + _kept(cfg.output_model))


def _kept(model_path: str) -> str:
    if os.path.exists(model_path):
        return (f"'{model_path}' holds the best model of the epochs before (it validated "
                "finite and better); no worse model was written.")
    return "No model was written."


def start(cfg: TrainConfig, monitor: Monitor, what: str = "") -> tuple:
    """(torch, device) for a run: seeded, with the device choice logged."""
    torch = import_torch()
    torch.manual_seed(cfg.seed)
    choice = select_device(cfg.device, backend="torch")
    monitor.info(f"Training {what}on {choice.description}."
                 + (f" Note: {choice.note}." if choice.note else ""))
    return torch, choice.device


def optimiser(model, cfg: TrainConfig, torch) -> tuple:
    """Adam with a cosine schedule down to 2 % of the learning rate."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs,
                                                       eta_min=cfg.learning_rate * 0.02)
    return opt, sched


class Stepper:
    """One optimisation step; on CUDA with automatic mixed precision (autocast + GradScaler)."""

    def __init__(self, opt, device: str, torch):
        self.opt, self.torch = opt, torch
        self.amp = device.startswith("cuda")
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None

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


class Task:
    """What one kind of training differs in; `run` drives it, in this order."""

    what = ""      # the model named in "Training {what}on {device}."
    baseline = ""  # what the validation compares with (report legend)

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.torch, self.device = None, "cpu"  # set by the runner before build()
        # this process's part of every batch drawn in `loss` (all of it but in a distributed run)
        self.share = slice(None)

    def check(self) -> None:
        """Refuse bad settings (DemSrError) before anything is loaded."""
        raise NotImplementedError

    def build(self, monitor: Monitor):
        """The starting model: untrained, or INIT_WEIGHTS."""
        raise NotImplementedError

    def prepare(self, model, monitor: Monitor) -> None:
        """Data and validator for `model` (on the device); logs a summary."""
        raise NotImplementedError

    def resolved(self) -> dict:
        """What besides the config a resume must match (e.g. the hyper-parameters)."""
        raise NotImplementedError

    def validate(self, model) -> dict:
        """val_* metrics, val_rmse, val_rmse_baseline and val_ratio (lower is better) included."""
        raise NotImplementedError

    def begin_epoch(self, epoch: int, first: int, monitor: Monitor) -> None:
        """Renew per-epoch data (0-based `epoch`; `first` of this run); may raise Cancelled."""

    def loss(self, model, rng: np.random.Generator, autocast):
        """The loss of this process's `share` of one batch drawn from `rng`, the forward pass
        inside `autocast()`."""
        raise NotImplementedError

    def provenance(self) -> dict:
        """How the model was made, for its checkpoint."""
        raise NotImplementedError

    def describe(self, m: dict, start: bool = False) -> str:
        """The validation part of a log line (`start`: the starting model's)."""
        raise NotImplementedError


class SingleProcess:
    """How the processes of a run share the work: here one process does all of it.

    distributed.Distributed (torchrun/DDP) changes each hook: its rank's device, the
    model wrapped for gradient averaging, a share of every batch, validation on one
    process broadcast to all, and one process writing checkpoints, resume file and report.
    """

    writer = True        # this process writes the model, the resume file and the report
    share = slice(None)  # the part of every batch this process computes

    def device(self, device: str) -> str:
        """The device this process trains on."""
        return device

    def wrap(self, model):
        """The model the training steps call (a DDP wrapper in a distributed run)."""
        return model

    def epoch_rng(self, seed: int, epoch: int) -> np.random.Generator:
        """The stream the batches of `epoch` are drawn from."""
        return np.random.default_rng([seed, epoch])

    def losses(self, losses: list) -> list:
        """The epoch's per-batch training losses over the whole batches."""
        return losses

    def validate(self, task: "Task", model) -> dict:
        """The validation metrics every process acts on (best epoch, log, report)."""
        return task.validate(model)

    def finish(self) -> None:
        """After the run: wait until every process is done."""


def run(task: Task, monitor: Optional[Monitor] = None,
        processes: Optional[SingleProcess] = None, checked: bool = False) -> TrainResult:
    """Train `task`; the best-on-validation model is saved at task.cfg.output_model.
    `checked`: task.check() has passed already (train.run_training, before the lock)."""
    from ..nets import checkpoint

    monitor = monitor or Monitor()
    procs = processes or SingleProcess()
    cfg = task.cfg
    if not checked:
        task.check()
    torch, device = start(cfg, monitor, task.what)
    device = procs.device(device)
    task.torch, task.device, task.share = torch, device, procs.share
    model = task.build(monitor).to(device).train()
    if procs.writer:
        check_room(model, cfg)
    task.prepare(model, monitor)
    stepped = procs.wrap(model)

    opt, sched = optimiser(model, cfg, torch)
    stepper = Stepper(opt, device, torch)
    state = RunState(cfg.output_model, resume_signature(cfg, **task.resolved()), torch,
                     procs.writer)
    if cfg.resume:
        state.resume(model, opt, sched, monitor)
    if not state.history:  # the untrained (or INIT_WEIGHTS) model is the reference point
        m0 = procs.validate(task, model)
        check_validation(m0, 0, cfg)
        state.begin(model, dict(epoch=0, train_loss=math.nan, lr=cfg.learning_rate,
                                seconds=0.0, **m0))
        monitor.info(f"before training: {task.describe(m0, start=True)}")
    csv_path, png_path = curve_paths(cfg.output_model)
    provenance = task.provenance()

    def save_best(epochs: int, m: dict) -> None:
        if procs.writer:
            checkpoint.save(checkpoint.from_model(model, model.interpolation, dict(
                provenance, epochs=epochs, validation=validation_record(m))), cfg.output_model)

    total = cfg.epochs * cfg.steps_per_epoch
    cancelled = False
    epoch = state.start_epoch
    for epoch in range(state.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        try:
            task.begin_epoch(epoch, state.start_epoch, monitor)
        except Cancelled:
            cancelled = True
            break
        rng = procs.epoch_rng(cfg.seed, epoch)
        losses = []
        for step in range(cfg.steps_per_epoch):
            if monitor.cancelled():
                cancelled = True
                break
            losses.append(stepper.step(task.loss(stepped, rng, stepper.autocast)))
            check_loss(losses[-1], epoch + 1, cfg)
            monitor.progress((epoch * cfg.steps_per_epoch + step + 1) / total)
        if cancelled:
            break
        sched.step()
        m = procs.validate(task, model)
        check_validation(m, epoch + 1, cfg)
        row, improved = state.end_epoch(epoch + 1, procs.losses(losses),
                                        time.perf_counter() - t0, opt.param_groups[0]["lr"], m,
                                        model, opt, sched, save_best)
        monitor.info(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, "
                     f"{task.describe(m)}" + (" — best so far, saved" if improved else ""))
        if procs.writer:
            write_curves(state.history, csv_path, png_path, task.baseline)
    state.finish(cancelled, epoch, monitor, model, save_best)
    if procs.writer:
        onnx_copy(cfg.output_model, cfg.export_onnx, monitor)
    # after the export: the other processes wait for it, so all of them tear their process
    # group down together (one that did so while the writer was still exporting was once
    # aborted by gloo, "terminate called without an active exception")
    procs.finish()
    return state.result(cfg.output_model, cancelled, csv_path, png_path)


def onnx_copy(model_path: str, wanted: bool, monitor: Monitor) -> None:
    """NAME.onnx beside the saved NAME.pt (core/nets/onnx_model.py), so the model runs where
    only ONNX Runtime is installed; an older NAME.onnx that would no longer match goes."""
    from ..backends import ONNX, installed_version
    from ..nets import onnx_model

    path = onnx_model.onnx_path(model_path)
    if not os.path.isfile(model_path):
        return
    if os.path.isfile(path):
        os.remove(path)  # made from other weights: never leave a copy that disagrees
    if not wanted:
        return
    if not installed_version(ONNX):
        monitor.warning(f"{os.path.basename(path)} was not written: ONNX Runtime, which checks "
                        "the export against PyTorch, is not installed (Install / repair "
                        "dependencies…, or `python3 scripts/export_onnx.py MODEL.pt` later).")
        return
    try:
        _, worst = onnx_model.export_checkpoint(model_path, path)
    except DemSrError as exc:
        monitor.warning(f"{os.path.basename(path)} was not written: {exc}")
        return
    monitor.info(f"Wrote {path} (ONNX copy for ONNX Runtime; largest difference to PyTorch on "
                 f"a test surface {worst:.2g} m).")
