"""Running a checkpoint inside the streaming engine.

A model works only at the scale it was trained for: the output grid must be
the input grid subdivided scale×scale (SCALE equal to the model's scale, or
TARGET_RESOLUTION equal to input pixel size / scale). Anything else is an
error that says which scales are available, rather than a silent extra
classical resample.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..devices import import_torch, is_out_of_memory, select_device
from ..errors import DemSrError
from ..grid import Grid
from ..monitor import Monitor
from ..tiling import Tile
from ..upsamplers import TileInput, Upsampler
from . import checkpoint

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "models")


def bundled_model_path(scale: int) -> str:
    return os.path.join(MODELS_DIR, f"demsr_fast_x{scale}.pt")


def bundled_scales() -> list[int]:
    if not os.path.isdir(MODELS_DIR):
        return []
    found = []
    for name in os.listdir(MODELS_DIR):
        if name.startswith("demsr_fast_x") and name.endswith(".pt"):
            try:
                found.append(int(name[len("demsr_fast_x"):-3]))
            except ValueError:
                pass
    return sorted(found)


def grid_factor(src: Grid, dst: Grid) -> Optional[int]:
    """The integer s when dst is exactly src subdivided s×s, else None."""
    fx, fy = src.res[0] / dst.res[0], src.res[1] / dst.res[1]
    s = int(round(fx))
    if s < 2 or abs(fx - s) > 1e-6 * s or abs(fy - s) > 1e-6 * s:
        return None
    ox = (dst.transform.c - src.transform.c) / dst.res[0]
    oy = (dst.transform.f - src.transform.f) / dst.res[1]
    if abs(ox) > 1e-6 or abs(oy) > 1e-6:
        return None
    return s


def resolve_model_path(model_path: Optional[str], src: Grid, dst: Grid) -> str:
    if model_path:
        return model_path
    s = grid_factor(src, dst)
    have = bundled_scales()
    if s is None or s not in have:
        factor = src.res[0] / dst.res[0]
        raise DemSrError(
            f"There is no bundled model for a ×{factor:.4g} super-resolution; bundled models "
            f"exist for ×{', ×'.join(map(str, have)) or ' (none installed)'}. Use SCALE "
            f"{' or '.join(map(str, have)) or '2'}, METHOD 'lanczos' (the best classical "
            "resampler), or a model trained with 'Train DEM SR' for this scale.")
    return bundled_model_path(s)


class ModelUpsampler(Upsampler):
    """A trained network applied to engine tiles, with OOM back-off on GPUs."""

    def __init__(self, ckpt: checkpoint.Checkpoint, device: str, batch_size: int, name: str):
        torch = import_torch()
        self.ckpt = ckpt
        self.scale = int(ckpt.scale)
        self.model = ckpt.build_for_inference(device)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.halo = int(self.model.halo)
        self.name = name
        self._torch = torch

    @classmethod
    def from_request(cls, req, src: Grid, dst: Grid, monitor: Monitor) -> "ModelUpsampler":
        path = resolve_model_path(req.model_path, src, dst)
        ckpt = checkpoint.load(path)
        s = grid_factor(src, dst)
        if s != ckpt.scale:
            factor = src.res[0] / dst.res[0]
            raise DemSrError(
                f"Model '{os.path.basename(path)}' super-resolves ×{ckpt.scale} only, but the "
                f"requested output grid is ×{factor:.4g} finer. Use SCALE {ckpt.scale} (or "
                f"TARGET_RESOLUTION = input pixel size / {ckpt.scale}), or a model trained for "
                "this scale.")
        choice = select_device(req.device)
        monitor.info(f"Model {ckpt.architecture} ×{ckpt.scale} from {path}; device: "
                     f"{choice.description}.")
        if choice.note:
            monitor.info(f"Note: {choice.note}.")
        return cls(ckpt, choice.device, req.batch_size,
                   f"model {ckpt.architecture} ×{ckpt.scale} ({os.path.basename(path)})")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = checkpoint.channels_last(torch.from_numpy(batch).to(self.device))
            return self.model(x).float().cpu().numpy()

    def _run_backoff(self, batch: np.ndarray) -> np.ndarray:
        """Run, halving the batch on GPU out-of-memory down to one window."""
        size = len(batch)
        while True:
            try:
                return np.concatenate([self._run(batch[i:i + size])
                                       for i in range(0, len(batch), size)])
            except Exception as exc:  # noqa: BLE001 - only OOM is retried
                if not is_out_of_memory(exc) or size == 1:
                    raise
                if self.device.startswith("cuda"):
                    self._torch.cuda.empty_cache()
                size = max(1, size // 2)
                self.batch_size = size

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        if not inputs:
            return []
        h = max(i.data.shape[0] for i in inputs)
        w = max(i.data.shape[1] for i in inputs)
        batch = np.stack([np.pad(i.data, ((0, h - i.data.shape[0]), (0, w - i.data.shape[1])),
                                 mode="edge") for i in inputs])[:, None].astype(np.float32)
        out = self._run_backoff(batch)[:, 0]
        s = self.scale
        result = []
        for k, (inp, t) in enumerate(zip(inputs, tiles)):
            r0, c0 = t.row0 - inp.row0 * s, t.col0 - inp.col0 * s
            if r0 < 0 or c0 < 0 or r0 + t.height > out.shape[1] or c0 + t.width > out.shape[2]:
                raise DemSrError("Internal error: a tile's input window does not cover it.")
            result.append(np.ascontiguousarray(out[k, r0:r0 + t.height, c0:c0 + t.width]))
        return result
