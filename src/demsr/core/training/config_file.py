"""A training configuration as a JSON file: what demsr:train exports and what a distributed
run (`distributed.py`, under torchrun) reads.

The file holds the config dataclass's fields; `architecture` says which one (the table in
tasks.py, as the toolbox's ARCHITECTURE does).
Cheap to import (no torch).
"""
from __future__ import annotations

import json
from dataclasses import asdict

from ..atomic import write_atomic
from ..errors import DemSrError
from .tasks import ARCHITECTURES, config_class, settings_of, training_for
from .config import TrainConfig

FORMAT = "demsr-train-config"


def config_to_dict(cfg: TrainConfig) -> dict:
    """The fields of `cfg` (JSON types) and its `architecture` (tasks.py)."""
    training_for(cfg)  # a config no architecture trains: DemSrError
    data = asdict(cfg)
    data["architecture"] = cfg.architecture  # DS-HAT's is a class constant, not a field
    return dict(format=FORMAT, **{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in data.items()})


def config_from_dict(data: dict) -> TrainConfig:
    """The config a dict from config_to_dict (or a hand-edited file) describes."""
    data = {k: v for k, v in data.items() if k != "format"}
    cls = config_class(data.get("architecture", ARCHITECTURES.names()[0]))
    if "architecture" not in settings_of(cls):  # implied by the class
        data.pop("architecture", None)
    known = settings_of(cls)
    unknown = sorted(set(data) - known)
    if unknown:
        raise DemSrError(f"Unknown training setting(s) {', '.join(unknown)}; a "
                         f"{cls.__name__} has {', '.join(sorted(known))}.")
    for key in ("inputs", "output_model"):
        if key not in data:
            raise DemSrError(f"The training configuration has no '{key}'.")
    if "coarser_copies" in data:
        data["coarser_copies"] = tuple(data["coarser_copies"])
    return cls(**data)


def save_config(cfg: TrainConfig, path: str) -> None:
    """Write `cfg` as JSON, whole or not at all; `path` may be no input or output of it."""
    from ..paths import check_distinct_paths
    from .runner import training_inputs, training_outputs

    check_distinct_paths(training_inputs(cfg), {**training_outputs(cfg), "EXPORT_CONFIG": path})
    write_atomic(path, json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config(path: str) -> TrainConfig:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DemSrError(f"Cannot read the training configuration '{path}': {exc}") from None
    if not isinstance(data, dict):
        raise DemSrError(f"'{path}' is not a training configuration (a JSON object).")
    return config_from_dict(data)
