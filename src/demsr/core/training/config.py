"""Training settings: the shared ones, and each task's own (no task inherits a field it
would have to reject). Plain dataclasses, cheap to import (no torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional


@dataclass
class TrainConfig:
    """The settings every task shares; each task's config adds its own."""

    inputs: list[str]
    output_model: str
    patch_size: int = 64          # pixels of loss per crop side (context comes on top)
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    init_weights: Optional[str] = None
    validation: float = 0.1
    device: str = "auto"
    steps_per_epoch: int = 100
    seed: int = 0
    hparams: dict = field(default_factory=dict)
    resume: bool = True
    export_onnx: bool = True      # NAME.onnx beside NAME.pt, to run where only ONNX Runtime is


@dataclass
class SRTrainConfig(TrainConfig):
    """Super-resolution ("fast", "gisr") from HR DEMs degraded to LR (sr_task.py)."""

    architecture: str = "fast"
    scale: float = 2              # the factor (any in (1, 8]); the lowest one with max_factor
    max_factor: Optional[float] = None  # train for every factor in [scale, max_factor]: one
    #                                     drawn per batch (one ×s network for a range)
    model_scale: int = 0          # the network's integer scale s (0 = INIT_WEIGHTS's, else the
    #                               smallest integer ≥ the highest factor)
    finish: str = "average"       # how the ×s output goes onto the ×f grid, in training and
    #                               in the engine: 'average' or 'cubicspline' (GDAL's kernel)
    degradation: str = "blockmean"
    loss: str = "l1"
    gradient_weight: float = 0.5
    coarser_copies: tuple = ()    # scale augmentation: also train on block-mean ×f copies


@dataclass
class DSHATTrainConfig(TrainConfig):
    """DS-HAT void repair / SR from HR DEMs with synthetic voids or LR/HR pairs
    (dshat_task.py)."""

    architecture: ClassVar[str] = "dshat"  # the only one (not a setting: not in the file)
    batch_size: int = 8
    gradient_weight: float = 0.10
    l1_weight: float = 0.85
    void_weight: float = 3.0
    factors: list = field(default_factory=lambda: [1, 2])
    void_coverage: float = 0.10
    scene_every: int = 2
    references: list = field(default_factory=list)  # pairs mode: HR reference per input
    spectral: list = field(default_factory=list)    # optional S2 raster per input
    auxiliary: list = field(default_factory=list)   # optional second DEM per input
    synthetic_auxiliary: bool = False               # synthesise one per scene from the truth
