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
from ..raster.grid import Grid, grid_factor
from ..monitor import Monitor
from ..raster.tiles import Tile
from .upsamplers import TileInput, Upsampler
from ..nets import bundled, checkpoint


def resolve_model_path(model_path: Optional[str], src: Grid, dst: Grid) -> str:
    if model_path:
        return model_path
    s = grid_factor(src, dst)
    have = bundled.sr_scales()
    if s is None or s not in have:
        factor = src.res[0] / dst.res[0]
        raise DemSrError(
            f"There is no bundled model for a ×{factor:.4g} super-resolution; bundled models "
            f"exist for ×{', ×'.join(map(str, have)) or ' (none installed)'}. Use SCALE "
            f"{' or '.join(map(str, have)) or '2'}, METHOD 'lanczos' (the best classical "
            "resampler), or a model trained with 'Train DEM SR' for this scale.")
    return bundled.sr_model_path(s)


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
    def for_grids(cls, model_path: Optional[str], src: Grid, dst: Grid, device: str,
                  batch_size: int, monitor: Monitor) -> "ModelUpsampler":
        """The checkpoint that maps src onto dst (the bundled one when model_path is None)."""
        path = resolve_model_path(model_path, src, dst)
        ckpt = checkpoint.load(path)
        if ckpt.architecture == "dshat":
            raise DemSrError(
                f"'{os.path.basename(path)}' is a DS-HAT void-repair model: it runs in 'Void "
                "repair/SR (DS-HAT)' (demsr:voidrepair, MODEL=this file), which also changes "
                "the grid. For Super-resolve DEM give a model trained with ARCHITECTURE fast "
                "or gisr, or leave MODEL empty for the bundled one.")
        note = checkpoint.integrity_note(ckpt, path)
        if note:
            monitor.info(note)
        s = grid_factor(src, dst)
        if s != ckpt.scale:
            factor = src.res[0] / dst.res[0]
            raise DemSrError(
                f"Model '{os.path.basename(path)}' super-resolves ×{ckpt.scale} only, but the "
                f"requested output grid is ×{factor:.4g} finer. Use SCALE {ckpt.scale} (or "
                f"TARGET_RESOLUTION = input pixel size / {ckpt.scale}), or a model trained for "
                "this scale.")
        choice = select_device(device)
        monitor.info(f"Model {ckpt.architecture} ×{ckpt.scale} from {path}; device: "
                     f"{choice.description}.")
        if choice.note:
            monitor.info(f"Note: {choice.note}.")
        return cls(ckpt, choice.device, batch_size,
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
