"""Running a checkpoint inside the streaming engine, at any factor it covers.

A ×s model (FastSR works on the LR grid and pixel-shuffles by an integer s) maps each
input window onto the window subdivided s×s; at a factor f ≠ s that goes onto the target
grid by area average (GDAL 'average': a target cell is the mean of the finer cells it
covers, what a coarser sensor sees) or GDAL cubic spline. Which factors a checkpoint
serves and which finish it gets is core/nets/coverage.py: what the checkpoint records
(models trained by 'Train DEM SR' for a factor or a range, through the area average),
else the rule older models were made under (s alone; from s = 4 up any f in (1, 2s],
area average up to s/2, cubic spline above). Which bundled model serves which factor, and
where two routes are blended, is the one table core/nets/bundled.RULE. A factor outside a
model's coverage is an error that lists what it covers, rather than a silent classical
resample.
"""
from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np

from ..devices import select_device
from ..errors import DemSrError
from ..raster.grid import Grid, grid_factor, grid_ratio, same_crs, subdivided
from ..raster.warp import KERNEL_RADIUS, area_average, resample
from ..monitor import Monitor
from ..raster.tiles import Tile
from .upsamplers import TileInput, Upsampler
from ..nets import bundled, checkpoint, coverage, trust
from ..nets.output_check import check_output_tile


def factor_of(src: Grid, dst: Grid) -> tuple[float, Optional[int]]:
    """How many times finer dst is than src, and the integer s when dst is src subdivided
    s×s exactly (else None): what the bundled rule and a checkpoint's coverage read."""
    return grid_ratio(src, dst), grid_factor(src, dst)


def bundled_route(src: Grid, dst: Grid) -> Optional[bundled.Route]:
    """The row of the bundled rule (bundled.RULE) for src → dst, None when none serves it."""
    return bundled.route(*factor_of(src, dst))


def resolve_model_path(model_path: Optional[str], src: Grid, dst: Grid) -> str:
    """The checkpoint for src → dst: MODEL when given, else the bundled rule's model."""
    return model_path or _bundled(*factor_of(src, dst)).path


def _bundled(factor: float, exact: Optional[int]) -> bundled.Route:
    found = bundled.route(factor, exact)
    if found is None:
        raise DemSrError(
            f"There is no bundled model for a ×{factor:.4g} super-resolution; the bundled "
            f"models serve every factor {bundled.served_text()}. Use a factor in that range, "
            "METHOD 'lanczos' (the best classical resampler), or a model trained with 'Train "
            "DEM SR' for this factor.")
    if not os.path.isfile(found.path):
        raise DemSrError(f"The bundled model {found.model} is missing from "
                         f"{bundled.MODELS_DIR}: reinstall the plugin, or give MODEL.")
    return found


def window_offset(batch: np.ndarray) -> np.ndarray:
    """Each window's mean elevation, whole metres, (B,1,1,1) float32: the networks run on
    elevations minus it and it is added back. Every network's output moves with a constant
    added to its input (local normalisation, interpolation weights that sum to 1), and
    float32 arithmetic on values near zero loses less: at 4000 m one rounding step is
    0.5 mm, so two runtimes (or layouts) summing in another order differed by up to 2 mm."""
    mean = batch.mean(axis=tuple(range(1, batch.ndim)), keepdims=True, dtype=np.float64)
    return np.round(mean).astype(np.float32)


class ModelUpsampler(Upsampler):
    """A trained network applied to engine tiles, with OOM back-off on GPUs."""

    def __init__(self, ckpt: checkpoint.Checkpoint, device: str, batch_size: int, name: str,
                 backend: Optional[str] = None):
        self.ckpt = ckpt
        self.scale = int(ckpt.scale)
        self.network = ckpt.build_for_inference(device, backend)  # core/backends.Network
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.halo = int(self.network.halo)
        self.name = name
        self.lanes = self.network.lanes

    def use_lanes(self, lanes: int) -> None:
        self.network.use_lanes(lanes)

    @classmethod
    def for_grids(cls, model_path: Optional[str], src: Grid, dst: Grid, device: str,
                  batch_size: int, monitor: Monitor) -> "ModelUpsampler":
        """The checkpoint that maps src onto dst (the bundled one when model_path is None)."""
        if not same_crs(src, dst):
            raise DemSrError("Internal error: a model maps grids of one CRS only.")
        factor, exact_scale = factor_of(src, dst)
        row = None if model_path else _bundled(factor, exact_scale)
        path = model_path or row.path
        choice = select_device(device)
        # with ONNX Runtime running it, NAME.onnx alone is read: torch is never imported
        ckpt = checkpoint.load(path, prefer_onnx=choice.backend == "onnx")
        if ckpt.architecture == "dshat":
            raise DemSrError(
                f"'{os.path.basename(path)}' is a DS-HAT void-repair model: it runs in 'Void "
                "repair/SR (DS-HAT)' (demsr:voidrepair, MODEL=this file), which also changes "
                "the grid. For Super-resolve DEM give a model trained with ARCHITECTURE fast "
                "or gisr, or leave MODEL empty for the bundled one.")
        note = trust.integrity_note(ckpt, path)
        if note:
            monitor.info(note)
        cov = coverage.of_checkpoint(ckpt.scale, ckpt.provenance, os.path.basename(path))
        if not cov.covers(factor):
            raise DemSrError(
                f"Model '{os.path.basename(path)}' (×{ckpt.scale}) covers factors "
                f"{cov.text()}, but the requested output grid is ×{factor:.4g} finer. Use a "
                "factor in that range, or a model trained for this factor (Train DEM SR: "
                "SCALE, and MAX_SCALE for a range).")
        exact = exact_scale == ckpt.scale
        finish = row.finish if row is not None and not exact else cov.finish_for(factor)
        route = ("" if exact else
                 f", then {coverage.FINISH_WORDS[finish]} onto the ×{factor:.4g} grid")
        name = f"model {ckpt.architecture} ×{ckpt.scale} ({os.path.basename(path)}){route}"
        if exact:
            up = cls(ckpt, choice.device, batch_size, name, choice.backend)
        else:
            up = FactorModelUpsampler(ckpt, choice.device, batch_size, name, src, dst, finish,
                                      choice.backend)
        runs = up.network.runtime
        where = choice.description if runs in choice.description else f"{choice.device}, {runs}"
        monitor.info(f"Model {ckpt.architecture} ×{ckpt.scale} from {path}{route}; device: "
                     f"{where}" + (f" (model file {os.path.basename(ckpt.onnx.path)})"
                                   if ckpt.onnx is not None else "") + ".")
        if choice.note:
            monitor.info(f"Note: {choice.note}.")
        return up

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.network.run(batch)

    def _run_backoff(self, batch: np.ndarray) -> np.ndarray:
        """Run, halving the batch on GPU out-of-memory down to one window."""
        size = len(batch)
        while True:
            try:
                parts = [self._run(batch[i:i + size]) for i in range(0, len(batch), size)]
                return parts[0] if len(parts) == 1 else np.concatenate(parts)
            except Exception as exc:  # noqa: BLE001 - only OOM is retried
                if not self.network.out_of_memory(exc) or size == 1:
                    raise
                self.network.release()
                size = max(1, size // 2)
                self.batch_size = size

    def _windows(self, inputs: list[TileInput]) -> np.ndarray:
        """The network's output for each input window, on the window subdivided s×s (padded
        to the batch's largest window)."""
        h = max(i.data.shape[0] for i in inputs)
        w = max(i.data.shape[1] for i in inputs)
        batch = np.empty((len(inputs), 1, h, w), np.float32)  # filled in place: no copies
        for k, i in enumerate(inputs):
            batch[k, 0] = np.pad(i.data, ((0, h - i.data.shape[0]), (0, w - i.data.shape[1])),
                                 mode="edge") if i.data.shape != (h, w) else i.data
        offset = window_offset(batch)
        batch -= offset
        out = self._run_backoff(batch)
        if not out.flags.writeable:
            out = out.copy()
        out += offset
        return out[:, 0]

    def upsample(self, inputs: list[TileInput], tiles: list[Tile]) -> list[np.ndarray]:
        if not inputs:
            return []
        out = self._windows(inputs)
        self._check_outputs(out, inputs)
        return [self._tile(out[k], inp, t) for k, (inp, t) in enumerate(zip(inputs, tiles))]

    def _check_outputs(self, out: np.ndarray, inputs: list[TileInput]) -> None:
        """Each window's answer is finite and within its input's relief (output_check.py),
        before anything is finished or written."""
        s = self.scale
        for k, inp in enumerate(inputs):
            h, w = inp.data.shape
            check_output_tile(out[k, :h * s, :w * s], inp.data, self.name,
                              f"input rows {inp.row0}–{inp.row0 + h - 1}, columns "
                              f"{inp.col0}–{inp.col0 + w - 1}")

    def _tile(self, window: np.ndarray, inp: TileInput, t: Tile) -> np.ndarray:
        """The output tile from the network's output on its (padded) input window."""
        s = self.scale
        r0, c0 = t.row0 - inp.row0 * s, t.col0 - inp.col0 * s
        if r0 < 0 or c0 < 0 or r0 + t.height > window.shape[0] or c0 + t.width > window.shape[1]:
            raise DemSrError("Internal error: a tile's input window does not cover it.")
        return np.ascontiguousarray(window[r0:r0 + t.height, c0:c0 + t.width])


class FactorModelUpsampler(ModelUpsampler):
    """A ×s network for another factor f: per tile, the network maps the input window onto
    the window subdivided s×s, and that goes onto the output tile by area average (GDAL
    'average') or GDAL cubic spline: the checkpoint's coverage says which (coverage.py).

    The halo covers both steps (the network's context plus the finishing kernel), so each
    output pixel sees the same values in every tile and tiles stay seamless.
    """

    def __init__(self, ckpt: checkpoint.Checkpoint, device: str, batch_size: int, name: str,
                 src: Grid, dst: Grid, finish: Optional[str] = None,
                 backend: Optional[str] = None):
        super().__init__(ckpt, device, batch_size, name, backend)
        self.src, self.dst = src, dst
        self.mid = subdivided(src, self.scale)
        factor = grid_ratio(src, dst)
        self.finish = finish or coverage.of_checkpoint(
            self.scale, ckpt.provenance).finish_for(factor)
        # fine cells each side the finishing step reads (GDAL widens kernels when shrinking)
        reach = 1 if self.finish == "average" else math.ceil(
            KERNEL_RADIUS[self.finish] * max(1.0, self.scale / factor)) + 1
        self.halo += 1 + -(-reach // self.scale)

    def _tile(self, window: np.ndarray, inp: TileInput, t: Tile) -> np.ndarray:
        s = self.scale
        h, w = inp.data.shape[0] * s, inp.data.shape[1] * s
        mid_t = self.mid.window_transform(inp.row0 * s, inp.col0 * s)
        dst_t = self.dst.window_transform(t.row0, t.col0)
        if self.finish == "average":
            return area_average(window[:h, :w], mid_t, (t.height, t.width), dst_t)
        return resample(window[:h, :w], mid_t, (t.height, t.width), dst_t, self.finish,
                        self.src.crs)
