"""Training DS-HAT for void repair / SR from HR DEMs (with synthetic voids) or LR/HR pairs.

Each training DEM becomes a "scene" exactly as Void repair would see it: the HR
DEM is block-averaged by a factor from `factors` (1 = void repair on the
DEM's own grid), synthetic radar-like voids are cut into it, and
core.voidrepair.prepare() fills, resamples back onto the HR grid and derives
the auxiliary channels, with per-raster constants, on the whole raster (flow
accumulation is not local, so it is never computed on crops). Crops of the
scenes train the network against the HR DEM. Scenes get new voids every
`scene_every` epochs; validation scenes are fixed (seeded).

In pairs mode (`references`), the inputs are the user's LR DEMs with their
real voids, each paired with an HR reference on the target grid: the scene
is the LR DEM prepared onto the reference's grid, and the reference cells
that are nodata are never used.

Train/validation split, patch bookkeeping, the CSV/PNG report, resume and
cancel come from the SR training (patches.py, loop.py). The kept epoch is the
one with the lowest `val_ratio`: the worst of (geometric mean over validation
crops of RMSE model / first fill in voids and / Lanczos outside them, pooled
RMSE ratio in voids, pooled RMSE ratio outside voids), so a model that helps
small voids but hurts large ones is not kept. The loss is
0.85 × L1 + 0.10 × gradient L1 on errors in units of each raster's relief
constant, with void pixels weighted `void_weight` times.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import rasterio

from ..errors import Cancelled, DemSrError
from ..raster.grid import Grid
from ..monitor import Monitor
from ..raster.io import GDAL_ENV, open_dem, read_band
from ..pipelines import dshat_inputs as vr
from ..nodata.find import FILLED, classify_voids
from .degrade import degrade_array
from .loop import (RunState, Stepper, TrainConfig, TrainResult, _write_report,
                   check_inputs_output, optimiser, report_paths, start, validation_record)
from .patches import Raster, _count, make_patch_set
from ..nodata.synthetic import synthetic_voids

CONTEXT = 8  # px of context around the loss window of a crop


@dataclass
class DSHATTrainConfig(TrainConfig):
    architecture: str = "dshat"
    patch_size: int = 64
    batch_size: int = 8
    epochs: int = 20
    gradient_weight: float = 0.10
    l1_weight: float = 0.85
    void_weight: float = 3.0
    factors: list = field(default_factory=lambda: [1, 2])
    void_coverage: float = 0.10
    scene_every: int = 2
    references: list = field(default_factory=list)  # pairs mode: HR reference per input
    spectral: list = field(default_factory=list)    # optional S2 raster per input


@dataclass
class Scene:
    """A whole raster prepared as the network sees it, and its truth (NaN = unknown)."""

    prep: vr.Prepared
    truth: np.ndarray


def _check(cfg: DSHATTrainConfig) -> None:
    check_inputs_output(cfg)
    if cfg.coarser_copies:
        raise DemSrError("Coarser copies (scale augmentation) are for SR training; DS-HAT "
                         "training makes its own LR scenes (factors).")
    if cfg.references and len(cfg.references) != len(cfg.inputs):
        raise DemSrError(f"Pairs mode needs one HR reference per LR DEM: got {len(cfg.inputs)} "
                         f"DEM(s) and {len(cfg.references)} reference(s).")
    if cfg.spectral and len(cfg.spectral) != len(cfg.inputs):
        raise DemSrError("Give one spectral raster per input DEM, or none.")
    if any(int(f) != f or not 1 <= f <= 8 for f in cfg.factors):
        raise DemSrError(f"DS-HAT training factors must be integers 1–8 (got {cfg.factors}).")
    if cfg.patch_size < 16:
        raise DemSrError("PATCH_SIZE must be at least 16 px for DS-HAT.")
    if not 0 < cfg.validation < 0.9:
        raise DemSrError("VALIDATION must be a share between 0 and 0.9 (e.g. 0.1).")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.steps_per_epoch < 1:
        raise DemSrError("EPOCHS, BATCH_SIZE and steps per epoch must be at least 1.")


def _load(path: str) -> tuple[np.ndarray, Grid]:
    src = open_dem(path)
    with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
        return read_band(ds, 1), src.grid


def synthetic_scene(hr: np.ndarray, grid: Grid, factor: int, rng: np.random.Generator,
                    coverage: float, spectral=None, monitor: Optional[Monitor] = None) -> Scene:
    """LR (block mean ×factor) with synthetic voids, prepared onto the HR grid."""
    f = int(factor)
    h, w = (hr.shape[0] // f) * f, (hr.shape[1] // f) * f
    truth = hr[:h, :w]
    dst = Grid(grid.transform, w, h, grid.crs)
    if f == 1:
        lr, lgrid = truth.copy(), dst
    else:
        lr = degrade_array(truth, f, "blockmean")
        lgrid = Grid(grid.transform * grid.transform.scale(f), w // f, h // f, grid.crs)
    holes = synthetic_voids(lr, rng, coverage=coverage)
    lr = lr.copy()
    lr[holes] = np.nan
    classes, _, _ = classify_voids(lr)
    return Scene(vr.prepare(lr, lgrid, dst, classes, spectral, monitor), truth)


def pair_scene(lr_path: str, ref_path: str, spectral=None,
               monitor: Optional[Monitor] = None) -> Scene:
    """The user's LR DEM (real voids) prepared onto its HR reference's grid."""
    lr, lgrid = _load(lr_path)
    truth, rgrid = _load(ref_path)
    classes, _, _ = classify_voids(lr)
    return Scene(vr.prepare(lr, lgrid, rgrid, classes, spectral, monitor), truth)


def _windows(scenes: list[Scene], ok: list[np.ndarray], crop: int, n: int,
             rng: np.random.Generator, prefer_voids: float = 0.7) -> list[tuple[int, int, int]]:
    """n (scene, row, col) crops that touch neither validation blocks nor unknown truth;
    most are the candidate with the most void pixels, so voids are seen often."""
    sizes = np.array([max(0, (s.truth.shape[0] - crop + 1) * (s.truth.shape[1] - crop + 1))
                      for s in scenes], np.float64)
    p = np.sqrt(sizes)
    p /= p.sum()
    out = []
    for _ in range(200 * n):
        if len(out) == n:
            break
        k = int(rng.choice(len(scenes), p=p))
        s = scenes[k]
        rows, cols = s.truth.shape[0] - crop + 1, s.truth.shape[1] - crop + 1
        rr, cc = rng.integers(0, rows, 16), rng.integers(0, cols, 16)
        good = np.flatnonzero(_count(ok[k], rr, cc, crop) == 0)
        if good.size == 0:
            continue
        if rng.random() < prefer_voids:
            cls = s.prep.classes
            voids = [int((cls[rr[g]:rr[g] + crop, cc[g]:cc[g] + crop] == FILLED).sum())
                     for g in good]
            g = good[int(np.argmax(voids))]
        else:
            g = good[0]
        out.append((k, int(rr[g]), int(cc[g])))
    if len(out) < n:
        raise DemSrError("Could not find training crops free of nodata and validation blocks; "
                         "use larger or more complete DEMs, or a smaller PATCH_SIZE.")
    return out


def _batch(scenes: list[Scene], wins, crop: int, rng: Optional[np.random.Generator]):
    """Stacked arrays (dem, mask, aux, sigma, truth, valid-truth) for crops, augmented when rng."""
    dem, msk, aux, sig, tru = [], [], [], [], []
    for k, r, c in wins:
        s = scenes[k]
        sl = (slice(r, r + crop), slice(c, c + crop))
        arrays = [s.prep.dem[sl][None], s.prep.voids[sl][None],
                  s.prep.aux[(slice(None),) + sl], s.truth[sl][None]]
        if rng is not None:
            rot, flip = int(rng.integers(4)), rng.random() < 0.5
            arrays = [np.rot90(a, rot, axes=(1, 2)) for a in arrays]
            if flip:
                arrays = [a[:, :, ::-1] for a in arrays]
        dem.append(arrays[0])
        msk.append(arrays[1])
        aux.append(arrays[2])
        tru.append(arrays[3])
        sig.append(s.prep.sigma)
    f = lambda xs: np.ascontiguousarray(np.stack(xs), dtype=np.float32)  # noqa: E731
    return f(dem), f(msk), f(aux), np.array(sig, np.float32)[:, None, None, None], f(tru)


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


class _Validator:
    """Fixed validation crops: RMSE in voids (model vs the first fill it starts from) and
    outside voids on finer grids (model vs Lanczos), in metres."""

    def __init__(self, scenes: list[Scene], wins, crop: int):
        self.data = _batch(scenes, wins, crop, None)
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
        m["val_ratio"] = float(max(p for p in parts if math.isfinite(p)))
        return m


def train_dshat(cfg: DSHATTrainConfig, monitor: Optional[Monitor] = None) -> TrainResult:
    """Train DS-HAT; the best-on-validation model is saved at cfg.output_model."""
    from ..nets import checkpoint, registry

    monitor = monitor or Monitor()
    _check(cfg)
    torch, device = start(cfg, monitor, "DS-HAT ")
    n_spec = vr.SPECTRAL_BANDS if cfg.spectral else 0
    aux_names = list(registry.get("dshat").defaults["aux_channels"]) + \
        [f"{vr.SPECTRAL_PREFIX}{i + 1}" for i in range(n_spec)]
    if cfg.init_weights:
        init = checkpoint.load(cfg.init_weights)
        if init.architecture != "dshat":
            raise DemSrError("INIT_WEIGHTS must be a DS-HAT model to fine-tune DS-HAT.")
        if list(init.hparams.get("aux_channels", [])) != aux_names:
            raise DemSrError(f"INIT_WEIGHTS uses channels {init.hparams.get('aux_channels')}, "
                             f"this training {aux_names}: give spectral rasters exactly when "
                             "the initial model has spectral channels.")
        model = init.build()
    else:
        model = registry.build("dshat", 1, {**cfg.hparams, "aux_channels": aux_names})
    hparams = dict(model.hparams)
    model = model.to(device).train()
    crop = cfg.patch_size + 2 * CONTEXT

    # The truth rasters define the split (validation blocks, unknown cells).
    truths = [_load(p) for p in (cfg.references or cfg.inputs)]
    spectral = [vr.read_spectral(p, n_spec) for p in cfg.spectral] if n_spec else \
        [None] * len(cfg.inputs)
    rasters = [Raster(os.path.basename(p), d, g.res, g.is_geographic, 0.0)
               for p, (d, g) in zip(cfg.references or cfg.inputs, truths)]
    patches = make_patch_set(rasters, crop, cfg.validation, cfg.seed, monitor.warning)
    keep = [next(i for i, r in enumerate(rasters) if r is kr) for kr in patches.rasters]
    factors = [1] if cfg.references else [int(f) for f in cfg.factors]

    def build_scenes(seed: int, mon: Monitor) -> list[list[Scene]]:
        """scenes[f][k]: factor index f, kept raster k."""
        rng = np.random.default_rng(seed)
        out = []
        steps = len(factors) * len(keep)
        for fi, f in enumerate(factors):
            row = []
            for j, i in enumerate(keep):
                mon.check()
                sub = mon.sub((fi * len(keep) + j) / steps, (fi * len(keep) + j + 1) / steps)
                if cfg.references:
                    row.append(pair_scene(cfg.inputs[i], cfg.references[i], spectral[i], sub))
                else:
                    row.append(synthetic_scene(truths[i][0], truths[i][1], f, rng,
                                               cfg.void_coverage, spectral[i], sub))
            out.append(row)
        return out

    t0 = time.perf_counter()
    val_scenes = build_scenes(cfg.seed + 7919, monitor.sub(0.0, 0.02))
    # validation crops: every block, each factor in turn
    flat_val, wins = [], []
    for n, (ri, r, c) in enumerate(patches.val_crops):
        f = n % len(factors)
        sc = val_scenes[f][ri]
        if r + crop <= sc.truth.shape[0] and c + crop <= sc.truth.shape[1]:
            flat_val.append(sc)
            wins.append((len(flat_val) - 1, r, c))
    if not wins:
        raise DemSrError("No validation block could be set aside; use a larger VALIDATION "
                         "share or larger DEMs.")
    validator = _Validator(flat_val, wins, crop)
    del val_scenes
    n_params = sum(p.numel() for p in model.parameters())
    monitor.info(f"DS-HAT: {n_params} parameters, halo {model.halo} px; channels "
                 f"{', '.join(aux_names)}; {len(keep)} DEMs, factors {factors}, "
                 f"{len(wins)} validation crops of {crop} px; scenes in "
                 f"{time.perf_counter() - t0:.0f} s.")

    opt, sched = optimiser(model, cfg, torch)
    stepper = Stepper(opt, device, torch)
    keys = dict(cfg.__dict__, inputs=sorted(map(os.path.abspath, cfg.inputs)), hparams=hparams,
                output_model=None, device=None, resume=None)
    sig = hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()
    run = RunState(cfg.output_model, sig, torch)
    if cfg.resume:
        run.resume(model, opt, sched, monitor)
    history = run.history
    if not history:
        m0 = validator.metrics(validator.predict(model, device, torch))
        run.begin(model, dict(epoch=0, train_loss=math.nan, lr=cfg.learning_rate, seconds=0.0,
                              **m0))
        monitor.info(f"before training: void RMSE {m0['val_rmse']:.4g} m (first fill "
                     f"{m0['val_rmse_baseline']:.4g} m)")
    csv_path, png_path = report_paths(cfg.output_model)
    provenance = dict(data=[os.path.basename(p) for p in cfg.inputs],
                      references=[os.path.basename(p) for p in cfg.references],
                      spectral=[os.path.basename(p) for p in cfg.spectral],
                      mode="pairs" if cfg.references else "synthetic voids",
                      factors=factors, void_coverage=cfg.void_coverage,
                      void_sizes_px=[5, 60], degradation="blockmean", seed=cfg.seed,
                      patch_size=cfg.patch_size, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, l1_weight=cfg.l1_weight,
                      gradient_weight=cfg.gradient_weight, void_weight=cfg.void_weight,
                      steps_per_epoch=cfg.steps_per_epoch, epochs_planned=cfg.epochs,
                      first_fill="biharmonic", resampling="GDAL lanczos",
                      init_weights=os.path.basename(cfg.init_weights or ""))

    def save_best(epochs: int, m: dict) -> None:
        checkpoint.save(checkpoint.from_model(model, model.interpolation, dict(
            provenance, epochs=epochs, validation=validation_record(m))), cfg.output_model)

    total = cfg.epochs * cfg.steps_per_epoch
    cancelled, scenes, c, p = False, None, CONTEXT, cfg.patch_size
    epoch = run.start_epoch
    for epoch in range(run.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        if scenes is None or (epoch - run.start_epoch) % max(1, cfg.scene_every) == 0:
            try:
                grid = build_scenes(cfg.seed * 1000 + epoch, Monitor(cancelled=monitor.cancelled))
            except Cancelled:
                cancelled = True
                break
            scenes = [s for row in grid for s in row]
            ok = [patches.train_ok[k] for row in grid for k in range(len(row))]
        rng = np.random.default_rng([cfg.seed, epoch])
        losses = []
        for step in range(cfg.steps_per_epoch):
            if monitor.cancelled():
                cancelled = True
                break
            wins = _windows(scenes, ok, crop, cfg.batch_size, rng)
            dem, msk, aux, sg, tru = (torch.from_numpy(a).to(device)
                                      for a in _batch(scenes, wins, crop, rng))
            with stepper.autocast():
                pred = model(dem, msk, aux, sg)
            inner = (Ellipsis, slice(c, c + p), slice(c, c + p))
            loss = dshat_loss(pred[inner].float(), tru[inner], (msk[inner] > 0).float(), sg,
                              cfg.l1_weight, cfg.gradient_weight, cfg.void_weight)
            losses.append(stepper.step(loss))
            monitor.progress((epoch * cfg.steps_per_epoch + step + 1) / total)
        if cancelled:
            break
        sched.step()
        m = validator.metrics(validator.predict(model, device, torch))
        row, improved = run.end_epoch(epoch + 1, losses, time.perf_counter() - t0,
                                      opt.param_groups[0]["lr"], m, model, opt, sched, save_best)
        monitor.info(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, void RMSE "
                     f"{m['val_rmse']:.4g} m (first fill {m['val_rmse_baseline']:.4g} m), outside "
                     f"{m['val_outside_rmse']:.4g} m (lanczos {m['val_outside_rmse_lanczos']:.4g}"
                     f" m), ratio {m['val_ratio']:.3f}" + (" — best so far, saved" if improved
                                                           else ""))
        _write_report(history, csv_path, png_path, baseline="first fill")
    run.finish(cancelled, epoch, monitor, model, save_best)
    return run.result(cfg.output_model, cancelled, csv_path, png_path)
