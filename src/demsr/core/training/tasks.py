"""Which training task serves each architecture: the one table (by name, BasicSR-style)
that demsr:train, the configuration file (config_file.py), run_training and the torchrun
command read (the networks themselves are registered in nets/registry.py). An architecture
is trained by a task (runner.Task) from the settings of one config class. Cheap to import:
a task is named here and imported only when a run needs it (torch)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields

from ..errors import DemSrError
from ..by_name import Registry
from .config import DSHATTrainConfig, SRTrainConfig, TrainConfig


@dataclass(frozen=True)
class Training:
    config: type      # the settings' dataclass (config.py)
    task: str         # "module:Class" of the runner.Task in this package


# architecture name -> Training; the first is the default (the toolbox's enum order)
ARCHITECTURES: Registry[Training] = Registry("model architecture")
ARCHITECTURES.register("fast", "gisr")(Training(SRTrainConfig, "sr_task:SRTask"))
ARCHITECTURES.register("dshat")(Training(DSHATTrainConfig, "dshat_task:DSHATTask"))


def config_class(architecture: str) -> type:
    """The config class whose settings train `architecture` (DemSrError if none)."""
    return ARCHITECTURES.get(architecture).config


def settings_of(config: type) -> set[str]:
    """The names of a config class's settings (its dataclass fields)."""
    return {f.name for f in fields(config)}


def config_for(architecture: str, offered: dict) -> TrainConfig:
    """The config that trains `architecture`, from the `offered` settings its class has (the
    others, e.g. DEGRADATION for DS-HAT, do not apply to it)."""
    config = config_class(architecture)
    return config(**{k: v for k, v in offered.items() if k in settings_of(config)})


def training_for(cfg: TrainConfig) -> Training:
    """The table's entry for `cfg` (its `architecture` and class must agree)."""
    name = getattr(cfg, "architecture", None)
    training = ARCHITECTURES.get(name) if name in ARCHITECTURES else None
    if training is None or not isinstance(cfg, training.config):
        raise DemSrError(f"No training for a {type(cfg).__name__}"
                         + (f" of architecture '{name}'" if name else "") + "; use one of "
                         f"{', '.join(dict.fromkeys(t.config.__name__ for t in _entries()))}.")
    return training


def task_for(cfg: TrainConfig):
    """The runner.Task that trains `cfg` (imports the task's module: torch)."""
    module, cls = training_for(cfg).task.split(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)(cfg)


def _entries() -> list[Training]:
    return [ARCHITECTURES.get(n) for n in ARCHITECTURES]
