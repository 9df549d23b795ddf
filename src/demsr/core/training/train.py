"""The one entry point for training: the task is the one tasks.py names for the
config's architecture."""
from __future__ import annotations

from typing import Optional

from ..monitor import Monitor
from .tasks import task_for
from .config import TrainConfig
from .lock import model_lock
from .runner import run
from .state import TrainResult


def run_training(cfg: TrainConfig, monitor: Optional[Monitor] = None) -> TrainResult:
    """Train the model `cfg` describes (SRTrainConfig: "fast"/"gisr"; DSHATTrainConfig:
    DS-HAT); the best-on-validation model is saved at cfg.output_model. The settings, inputs
    and outputs are checked first, then the model's lock (lock.py) is held for the run: the
    lock file beside the model may not be an input."""
    monitor = monitor or Monitor()
    task = task_for(cfg)
    task.check()
    with model_lock(cfg.output_model, monitor.info):
        return run(task, monitor, checked=True)
