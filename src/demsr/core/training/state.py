"""What a training run keeps between epochs: history, best model, resume file.

One implementation for every task: the resume file is written after each
epoch (atomically) and read back only when its signature (the settings that
must match) is the same; the starting model counts as epoch 0, so a run whose
epochs all validate worse than its start outputs the start.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from ..atomic import replacing
from ..errors import Cancelled
from ..monitor import Monitor


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


def resume_path(model_path: str) -> str:
    return model_path + ".resume"


def resume_signature(cfg, **resolved) -> str:
    """What must match for a resume file to continue a run: every setting of the config
    but where the model goes and what runs it, with what the task resolved from it
    (e.g. the architecture and hyper-parameters of INIT_WEIGHTS)."""
    keys = dict(asdict(cfg), inputs=sorted(os.path.abspath(p) for p in cfg.inputs),
                output_model=None, device=None, resume=None, export_onnx=None)
    keys.update(resolved)
    return hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()


def validation_record(m: dict) -> dict:
    """The validation figures a checkpoint records (finite val_* metrics, rounded)."""
    return {k: round(float(v), 6) for k, v in m.items()
            if k.startswith("val_") and math.isfinite(v)}


class RunState:
    """History, best epoch and resume file of one run; `writer` False (a process that
    does not write, in a later distributed run) keeps the state but writes no file."""

    def __init__(self, model_path: str, signature: str, torch, writer: bool = True):
        self.path, self.signature, self.torch = resume_path(model_path), signature, torch
        self.writer = writer
        self.start_epoch = 0
        self.history: list[dict] = []
        self.best = (math.inf, math.nan, math.nan, -1)  # ratio, rmse, baseline, epoch
        self.initial = None  # the starting weights, while no epoch has beaten them

    def begin(self, model, m0: dict) -> None:
        """The starting model (untrained, or INIT_WEIGHTS) is the first candidate for best."""
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
            from ..nets.trust import unsafe_load_text

            why = unsafe_load_text(exc) or (str(exc).splitlines() or [type(exc).__name__])[0]
            monitor.warning(f"Cannot resume from {self.path} ({why[:300]}); starting anew.")

    def save(self, epoch: int, model, opt, sched) -> None:
        if not self.writer:
            return
        try:
            with replacing(self.path) as tmp:
                self.torch.save(dict(signature=self.signature, epoch=epoch,
                                     model=model.state_dict(), optimizer=opt.state_dict(),
                                     scheduler=sched.state_dict(), history=self.history,
                                     best=list(self.best), initial=self.initial), tmp)
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
            from ..nets.checkpoint import write_failed

            raise write_failed(self.path, exc) from None

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
        elif self.writer and os.path.exists(self.path):
            os.remove(self.path)

    def result(self, model_path: str, cancelled: bool, csv_path: str,
               png_path: str) -> TrainResult:
        b = self.best
        return TrainResult(model_path, b[1], b[2], b[3], self.history[-1]["epoch"], cancelled,
                           csv_path, png_path, self.history)
