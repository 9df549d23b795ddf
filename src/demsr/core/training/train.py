"""The one entry point for training: the task is chosen by the config's type."""
from __future__ import annotations

from typing import Optional

from ..errors import DemSrError
from ..monitor import Monitor
from .config import DSHATTrainConfig, SRTrainConfig, TrainConfig
from .dshat_task import DSHATTask
from .runner import run
from .sr_task import SRTask
from .state import TrainResult

TASKS = {SRTrainConfig: SRTask, DSHATTrainConfig: DSHATTask}


def run_training(cfg: TrainConfig, monitor: Optional[Monitor] = None) -> TrainResult:
    """Train the model `cfg` describes (SRTrainConfig: "fast"/"gisr"; DSHATTrainConfig:
    DS-HAT); the best-on-validation model is saved at cfg.output_model."""
    task = TASKS.get(type(cfg))
    if task is None:
        raise DemSrError(f"No training for a {type(cfg).__name__}; use one of "
                         f"{', '.join(c.__name__ for c in TASKS)}.")
    return run(task(cfg), monitor)
