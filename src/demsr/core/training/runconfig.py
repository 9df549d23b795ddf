"""A training configuration as a JSON file: what demsr:train exports and what a distributed
run (`distributed.py`, under torchrun) reads.

The file holds the config dataclass's fields; `architecture` says which one ("fast",
"gisr": SRTrainConfig; "dshat": DSHATTrainConfig, as the toolbox's ARCHITECTURE does).
Cheap to import (no torch).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, fields

from ..errors import DemSrError
from .config import DSHATTrainConfig, SRTrainConfig, TrainConfig

FORMAT = "demsr-train-config"


def config_to_dict(cfg: TrainConfig) -> dict:
    """The fields of `cfg` (JSON types), with `architecture` 'dshat' for DS-HAT."""
    data = asdict(cfg)
    if isinstance(cfg, DSHATTrainConfig):
        data["architecture"] = "dshat"
    elif not isinstance(cfg, SRTrainConfig):
        raise DemSrError(f"No training for a {type(cfg).__name__}.")
    return dict(format=FORMAT, **{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in data.items()})


def config_from_dict(data: dict) -> TrainConfig:
    """The config a dict from config_to_dict (or a hand-edited file) describes."""
    data = {k: v for k, v in data.items() if k != "format"}
    cls = DSHATTrainConfig if data.get("architecture") == "dshat" else SRTrainConfig
    if cls is DSHATTrainConfig:
        data.pop("architecture")
    known = {f.name for f in fields(cls)}
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
    """Write `cfg` as JSON (atomically: a temporary file moved into place)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config_to_dict(cfg), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def load_config(path: str) -> TrainConfig:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DemSrError(f"Cannot read the training configuration '{path}': {exc}") from None
    if not isinstance(data, dict):
        raise DemSrError(f"'{path}' is not a training configuration (a JSON object).")
    return config_from_dict(data)
