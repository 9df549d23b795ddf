"""DS-HAT training for void repair / SR, from HR DEMs (synthetic voids) or LR/HR pairs.

Each training DEM becomes a scene (dshat_data.py): the HR DEM is
block-averaged by a factor from `factors` (1 = void repair on the DEM's own
grid), synthetic radar-like voids are cut into it and it is prepared as Void
repair would. Crops of the scenes train the network against the HR DEM.
Scenes get new voids every `scene_every` epochs; validation scenes are fixed
(seeded). In pairs mode (`references`), the inputs are the user's LR DEMs
with their real voids, each paired with an HR reference on the target grid,
and the reference cells that are nodata are never used.

The kept epoch is the one with the lowest `val_ratio`: the worst of
(geometric mean over validation crops of RMSE model / first fill in voids and
/ Lanczos outside them, pooled RMSE ratio in voids, pooled RMSE ratio outside
voids), so a model that helps small voids but hurts large ones is not kept.
The loss is l1_weight × L1 + gradient_weight × gradient L1 on errors in units
of each raster's relief constant, with void pixels weighted `void_weight` times.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ..errors import DemSrError
from ..monitor import Monitor
from ..pipelines import dshat_inputs
from .config import DSHATTrainConfig
from .dshat_data import (Scene, batch, load_dem, pair_factor, pair_scene, synthetic_scene,
                         windows)
from .patches import Raster, make_patch_set
from .runner import Task, check_inputs_output, check_run_settings

CONTEXT = 8  # px of context around the loss window of a crop


def dshat_loss(pred, truth, mask, sigma, l1_weight: float, gradient_weight: float,
               void_weight: float):
    """l1_weight × weighted L1 + gradient_weight × gradient L1, in relief units, on cells
    whose truth is known; void cells weigh void_weight times."""
    import torch

    known = torch.isfinite(truth)
    e = torch.where(known, (pred - torch.nan_to_num(truth)) / sigma, torch.zeros_like(pred))
    w = (1.0 + (void_weight - 1.0) * mask) * known
    loss = l1_weight * (w * e.abs()).sum() / w.sum().clamp_min(1.0)
    if gradient_weight > 0:
        gx = (e[..., :, 1:] - e[..., :, :-1]).abs() * (known[..., :, 1:] & known[..., :, :-1])
        gy = (e[..., 1:, :] - e[..., :-1, :]).abs() * (known[..., 1:, :] & known[..., :-1, :])
        loss = loss + gradient_weight * (gx.mean() + gy.mean())
    return loss


def _rmse(x):
    return float(np.sqrt(np.mean(x ** 2))) if x.size else math.nan


class DSHATValidator:
    """Fixed validation crops: RMSE in voids (model vs the first fill it starts from) and
    outside voids on finer grids (model vs Lanczos), in metres."""

    def __init__(self, scenes: list[Scene], wins, crop: int):
        self.data = batch(scenes, wins, crop, None)
        self.c = CONTEXT
        self.factor_one = [scenes[k].prep.same_grid for k, _, _ in wins]

    def predict(self, model, device, torch, batch: int = 8) -> np.ndarray:
        dem, msk, aux, sig, _ = self.data
        out = []
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(dem), batch):
                t = lambda a: torch.from_numpy(a[i:i + batch]).to(device)  # noqa: E731
                out.append(model(t(dem), t(msk), t(aux), t(sig)).float().cpu().numpy())
        model.train()
        return np.concatenate(out)

    def metrics(self, pred: np.ndarray) -> dict:
        dem, msk, _, _, tru = self.data
        c = self.c
        inner = (slice(None), 0, slice(c, -c), slice(c, -c))
        p, b, t, m = pred[inner], dem[inner], tru[inner], msk[inner] > 0
        known = np.isfinite(t)
        ratios, vm, vb, om, ob = [], [], [], [], []
        for k in range(len(p)):
            v = m[k] & known[k]
            if v.sum() >= 4:
                em, eb = p[k][v] - t[k][v], b[k][v] - t[k][v]
                vm.append(em)
                vb.append(eb)
                ratios.append(max(_rmse(em), 1e-9) / max(_rmse(eb), 1e-9))
            o = ~m[k] & known[k]
            if not self.factor_one[k] and o.sum() >= 4:
                em, eb = p[k][o] - t[k][o], b[k][o] - t[k][o]
                om.append(em)
                ob.append(eb)
                ratios.append(max(_rmse(em), 1e-9) / max(_rmse(eb), 1e-9))
        cat = lambda xs: np.concatenate(xs) if xs else np.empty(0)  # noqa: E731
        m = dict(val_rmse=_rmse(cat(vm)), val_rmse_baseline=_rmse(cat(vb)),
                 val_ratio_geomean=float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan,
                 val_outside_rmse=_rmse(cat(om)), val_outside_rmse_lanczos=_rmse(cat(ob)))
        # Conservative score: a model counts as better only if it is better per crop (geometric
        # mean) AND in pooled metres, in voids and outside them alike.
        parts = [m["val_ratio_geomean"], m["val_rmse"] / max(m["val_rmse_baseline"], 1e-9)]
        if om:
            parts.append(m["val_outside_rmse"] / max(m["val_outside_rmse_lanczos"], 1e-9))
        finite = [p for p in parts if math.isfinite(p)]
        # none finite: NaN, which the runner's validation check stops with advice
        m["val_ratio"] = float(max(finite)) if finite else float("nan")
        return m


class DSHATTask(Task):
    """DS-HAT trained on prepared scenes."""

    cfg: DSHATTrainConfig
    what = "DS-HAT "
    baseline = "first fill"

    def __init__(self, cfg: DSHATTrainConfig):
        super().__init__(cfg)
        self.scenes, self.ok = None, None  # training scenes and their allowed-area images

    def check(self) -> None:
        cfg = self.cfg
        check_inputs_output(cfg)
        if cfg.references and len(cfg.references) != len(cfg.inputs):
            raise DemSrError(f"Pairs mode needs one HR reference per LR DEM: got "
                             f"{len(cfg.inputs)} DEM(s) and {len(cfg.references)} reference(s).")
        if cfg.spectral and len(cfg.spectral) != len(cfg.inputs):
            raise DemSrError("Give one spectral raster per input DEM, or none.")
        if cfg.auxiliary and len(cfg.auxiliary) != len(cfg.inputs):
            raise DemSrError(f"Give one auxiliary DEM per input DEM, or none: got "
                             f"{len(cfg.inputs)} DEM(s) and {len(cfg.auxiliary)} auxiliary "
                             "DEM(s).")
        if cfg.auxiliary and cfg.synthetic_auxiliary:
            raise DemSrError("Give auxiliary DEMs or ask for synthetic ones, not both.")
        if cfg.synthetic_auxiliary and cfg.references:
            raise DemSrError("Synthetic auxiliary DEMs are made from HR DEMs; in pairs mode "
                             "(REFERENCES) give one real auxiliary DEM per input instead.")
        if any(int(f) != f or not 1 <= f <= 8 for f in cfg.factors):
            raise DemSrError(f"DS-HAT training factors must be integers 1–8 (got {cfg.factors}).")
        if cfg.patch_size < 16:
            raise DemSrError("PATCH_SIZE must be at least 16 px for DS-HAT.")
        check_run_settings(cfg)

    def build(self, monitor: Monitor):
        """The untrained network with the channels of this training, or INIT_WEIGHTS."""
        from ..nets import checkpoint, registry

        cfg = self.cfg
        self.n_spec = dshat_inputs.SPECTRAL_BANDS if cfg.spectral else 0
        self.with_aux = bool(cfg.auxiliary) or cfg.synthetic_auxiliary
        self.aux_names = dshat_inputs.model_channels(self.with_aux, self.n_spec)
        if cfg.init_weights:
            init = checkpoint.load(cfg.init_weights, role="INIT_WEIGHTS")
            if init.architecture != "dshat":
                raise DemSrError("INIT_WEIGHTS must be a DS-HAT model to fine-tune DS-HAT.")
            if list(init.hparams.get("aux_channels", [])) != self.aux_names:
                raise DemSrError(f"INIT_WEIGHTS uses channels "
                                 f"{init.hparams.get('aux_channels')}, this training "
                                 f"{self.aux_names}: give spectral rasters (and auxiliary "
                                 "DEMs) exactly when the initial model was trained with them.")
            model = init.build()
        else:
            model = registry.build("dshat", 1, {**cfg.hparams, "aux_channels": self.aux_names})
        self.hparams = dict(model.hparams)
        return model

    def prepare(self, model, monitor: Monitor) -> None:
        """The split (from the truth rasters), validation scenes and crops; logs a summary."""
        cfg = self.cfg
        self.crop = crop = cfg.patch_size + 2 * CONTEXT
        self.truths = [load_dem(p) for p in (cfg.references or cfg.inputs)]
        self.spectral = [dshat_inputs.read_spectral(p, self.n_spec) for p in cfg.spectral] \
            if self.n_spec else [None] * len(cfg.inputs)
        rasters = [Raster(os.path.basename(p), d, g.res, g.is_geographic, 0.0)
                   for p, (d, g) in zip(cfg.references or cfg.inputs, self.truths)]
        self.patches = make_patch_set(rasters, crop, cfg.validation, cfg.seed, monitor.warning)
        self.keep = [next(i for i, r in enumerate(rasters) if r is kr)
                     for kr in self.patches.rasters]
        self.factors = [1] if cfg.references else [int(f) for f in cfg.factors]
        # pairs: the grid change each LR DEM → reference makes (what the model is for)
        self.grid_factors = sorted({round(pair_factor(cfg.inputs[i], cfg.references[i]), 4)
                                    for i in self.keep}) if cfg.references else []

        t0 = time.perf_counter()
        val_scenes = self._scenes(cfg.seed + 7919, monitor.sub(0.0, 0.02))
        # validation crops: every block, each factor in turn
        flat_val, wins = [], []
        for n, (ri, r, c) in enumerate(self.patches.val_crops):
            sc = val_scenes[n % len(self.factors)][ri]
            if r + crop <= sc.truth.shape[0] and c + crop <= sc.truth.shape[1]:
                flat_val.append(sc)
                wins.append((len(flat_val) - 1, r, c))
        if not wins:
            raise DemSrError("No validation block could be set aside; use a larger VALIDATION "
                             "share or larger DEMs.")
        self.validator = DSHATValidator(flat_val, wins, crop)
        n_params = sum(p.numel() for p in model.parameters())
        monitor.info(f"DS-HAT: {n_params} parameters, halo {model.halo} px; channels "
                     f"{', '.join(self.aux_names)}; {len(self.keep)} DEMs, factors "
                     f"{self.factors}, {len(wins)} validation crops of {crop} px; scenes in "
                     f"{time.perf_counter() - t0:.0f} s.")

    def _scenes(self, seed: int, mon: Monitor) -> list[list[Scene]]:
        """scenes[f][k]: factor index f, kept raster k."""
        cfg, keep = self.cfg, self.keep
        rng = np.random.default_rng(seed)
        out = []
        steps = len(self.factors) * len(keep)
        for fi, f in enumerate(self.factors):
            row = []
            for j, i in enumerate(keep):
                mon.check()
                sub = mon.sub((fi * len(keep) + j) / steps, (fi * len(keep) + j + 1) / steps)
                aux = cfg.auxiliary[i] if cfg.auxiliary else None
                if cfg.references:
                    row.append(pair_scene(cfg.inputs[i], cfg.references[i], self.spectral[i],
                                          sub, aux))
                else:
                    row.append(synthetic_scene(self.truths[i][0], self.truths[i][1], f, rng,
                                               cfg.void_coverage, self.spectral[i], sub,
                                               auxiliary=self.with_aux, aux_path=aux))
            out.append(row)
        return out

    def resolved(self) -> dict:
        return dict(hparams=self.hparams)

    def validate(self, model) -> dict:
        v = self.validator
        return v.metrics(v.predict(model, self.device, self.torch))

    def begin_epoch(self, epoch: int, first: int, monitor: Monitor) -> None:
        """New synthetic voids every `scene_every` epochs (Cancelled stops the run)."""
        if self.scenes is None or (epoch - first) % max(1, self.cfg.scene_every) == 0:
            grid = self._scenes(self.cfg.seed * 1000 + epoch, Monitor(cancelled=monitor.cancelled))
            self.scenes = [s for row in grid for s in row]
            self.ok = [self.patches.train_ok[k] for row in grid for k in range(len(row))]

    def loss(self, model, rng: np.random.Generator, autocast):
        cfg, torch = self.cfg, self.torch
        c, p = CONTEXT, cfg.patch_size
        wins = windows(self.scenes, self.ok, self.crop, cfg.batch_size, rng)
        dem, msk, aux, sg, tru = (torch.from_numpy(np.ascontiguousarray(a[self.share]))
                                  .to(self.device)
                                  for a in batch(self.scenes, wins, self.crop, rng))
        with autocast():
            pred = model(dem, msk, aux, sg)
        inner = (Ellipsis, slice(c, c + p), slice(c, c + p))
        return dshat_loss(pred[inner].float(), tru[inner], (msk[inner] > 0).float(), sg,
                          cfg.l1_weight, cfg.gradient_weight, cfg.void_weight)

    def provenance(self) -> dict:
        cfg = self.cfg
        return dict(data=[os.path.basename(p) for p in cfg.inputs],
                    references=[os.path.basename(p) for p in cfg.references],
                    spectral=[os.path.basename(p) for p in cfg.spectral],
                    mode="pairs" if cfg.references else "synthetic voids",
                    # what the model is for (core.pipelines.voidrepair chooses the route by it)
                    task="grid change" if cfg.references else "repair",
                    grid_factors=self.grid_factors, auxiliary_dem=self.with_aux,
                    auxiliary=("synthetic" if cfg.synthetic_auxiliary else
                               [os.path.basename(p) for p in cfg.auxiliary]),
                    factors=self.factors, void_coverage=cfg.void_coverage,
                    void_sizes_px=[5, 60], degradation="blockmean", seed=cfg.seed,
                    patch_size=cfg.patch_size, batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate, l1_weight=cfg.l1_weight,
                    gradient_weight=cfg.gradient_weight, void_weight=cfg.void_weight,
                    steps_per_epoch=cfg.steps_per_epoch, epochs_planned=cfg.epochs,
                    first_fill="delta surface fill" if self.with_aux else "biharmonic",
                    resampling="GDAL lanczos",
                    init_weights=os.path.basename(cfg.init_weights or ""))

    def describe(self, m: dict, start: bool = False) -> str:
        if start:
            return (f"void RMSE {m['val_rmse']:.4g} m (first fill "
                    f"{m['val_rmse_baseline']:.4g} m)")
        return (f"void RMSE {m['val_rmse']:.4g} m (first fill {m['val_rmse_baseline']:.4g} m), "
                f"outside {m['val_outside_rmse']:.4g} m (lanczos "
                f"{m['val_outside_rmse_lanczos']:.4g} m), ratio {m['val_ratio']:.3f}")
