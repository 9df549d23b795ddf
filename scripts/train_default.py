"""Train a bundled default model: `make train-default` runs this for ×2, ×3, ×4 and the
factor-range models.

    python scripts/train_default.py --scale 2 [--epochs 40 --steps 100 --out PATH]
    python scripts/train_default.py --range 2 4   # fine-tunes the ×4 model for (2, 4)
    python scripts/train_default.py --range 1 2   # a narrow ×4 network for (1, 2)

Fixed data list (scripts/default_data.py), seed, epochs and settings, so the
shipped models can be rebuilt. The held-out validation DEMs are never read.
"""
import argparse
import json
import os

import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path
from default_data import TRAIN, paths  # noqa: E402
from demsr.core.nets.bundled import MODELS_DIR  # noqa: E402
from demsr.core.training.config import SRTrainConfig  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402
from training_cli import add_run_args, settings_for, timed_log  # noqa: E402

# Settings per scale: bigger crops at ×4 so the LR patch keeps some size. The loss of
# each scale is the one that did better on the held-out DEMs (scripts/evaluate.py).
# Both train on block-mean ×2 and ×3 copies of the DEMs too (scale augmentation).
WIDE = dict(patch_size=96, epochs=40, steps_per_epoch=100, batch_size=16, loss="l1",
            gradient_weight=0.5, coarser_copies=(2, 3))
SETTINGS = {2: dict(patch_size=64, epochs=40, steps_per_epoch=100, batch_size=32,
                    loss="mse", gradient_weight=0.1, coarser_copies=(2, 3)),
            3: WIDE, 4: WIDE}

# Architecture per scale: ×2 is a 16-channel FastSR since 0.4.2 (32 before): ONNX Runtime
# computes channels in blocks of 16, and 16 channels halve the engine's time at ×2 for 0.4 %
# of the held-out elevation ratio (0.899 / slope 0.887 → 0.903 / 0.892, docs/experiments.md);
# ×4 runs on 16× fewer LR pixels and affords a wider, deeper net;
# ×3 has the ×4 settings (held out at ×3: 0.899 / slope 0.897, where the (2, 4) model,
# a ×4 network, reached 0.906 / 0.896 with one DEM's slope worse than GDAL).
# Against the models without both (held-out elevation / slope ratios, scripts/evaluate.py):
# ×2 0.905 / 0.896 → 0.899 / 0.887, ×4 0.897 / 0.906 → 0.895 / 0.898.
WIDE_NET = {"channels": 48, "blocks": 8}
HPARAMS: dict = {2: {"channels": 16}, 3: WIDE_NET, 4: WIDE_NET}

# Factor-range models, each trained through the engine's finishing step for its range
# (`finish`), one factor drawn per batch (core/training/sr_task.py); same data list, seed and
# scale augmentation as ×4. All three are bundled (`make train-default`).
# (2, 4): the bundled ×4 network fine-tuned through GDAL cubic spline (lower learning rate).
# Held out (scripts/evaluate_factors.py --model): ×2.5 0.897 (rule 0.929), ×3 0.906 (0.914),
# ×3.5 0.892 (0.896), ×3.75 0.913 (0.912: it serves up to ×3.5, core/nets/bundled.RULE;
# docs/quality.md). Through the area average instead (`--finish average`): ×2.5 0.912
# but 1.049 on the 1 m lidar (worse than GDAL Lanczos), ×3 0.937: not bundled. A stronger
# gradient term (2.0): the same validation curve (0.855 against 0.853 at epoch 5).
# (1, 2): a narrow ×4 network (16 channels since 0.4.1, 4 blocks, no back-projection;
# docs/experiments.md: half the time of 24 channels on ONNX Runtime, ×1.5625 0.806 against
# 0.794) trained from
# scratch through the area average: its convolutions cost a sixth of the ×4 model's, for
# the ≤ 3× gdalwarp target at ×1.5625 (docs/benchmarks.md). The ×4 model fine-tuned for
# (1, 2) reached ×1.5625 0.809 at 6.1× gdalwarp; the ×2 model fine-tuned through the area
# average stayed at Lanczos's error (validation ratio 1.00): its ×2 grid is too coarse for
# an area average onto grids 1–2× finer than the input.
# (2, 3): the ×3 model fine-tuned the same way through cubic spline; serves (2, 2.625]
# (core/nets/bundled.RULE): ×2.25 0.874 (0.891 with the (2, 4) model), ×2.5 0.897 / slope
# 0.900 (0.897 / 0.907), ×2.625 0.876 (0.881), ×2.75 0.895 (0.873).
FINE_TUNE = dict(WIDE, finish="cubicspline", learning_rate=3e-4, epochs=10)
RANGES = {(2.0, 3.0): dict(FINE_TUNE, init="demsr_fast_x3.pt", out="demsr_fast_x3_f2-3.pt"),
          (2.0, 4.0): dict(FINE_TUNE, init="demsr_fast_x4.pt", out="demsr_fast_x4_f2-4.pt"),
          # smaller crops: near ×1 the LR input is nearly as large as the HR crop
          (1.0, 2.0): dict(init=None, model_scale=4, out="demsr_fast_x4_f1-2.pt",
                           hparams={"channels": 16, "blocks": 4, "back_projection": 0},
                           finish="average", learning_rate=2e-3, patch_size=48, epochs=30,
                           steps_per_epoch=100, batch_size=16, loss="l1", gradient_weight=1.0,
                           coarser_copies=(2, 3))}
MODELS = MODELS_DIR


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, choices=sorted(SETTINGS))
    ap.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"),
                    help="a factor-range model of RANGES instead of --scale")
    ap.add_argument("--lr", type=float, default=None, help="default 2e-3 (RANGES: their own)")
    ap.add_argument("--finish", choices=("average", "cubicspline"),
                    help="RANGES: another finishing step to train through (and record)")
    ap.add_argument("--hparams", default="{}", help="JSON architecture hyper-parameters")
    ap.add_argument("--out")
    add_run_args(ap, threads=0)
    a = ap.parse_args()
    if (a.scale is None) == (a.range is None):
        ap.error("give one of --scale and --range")
    if a.range:
        spec = dict(RANGES[tuple(a.range)])
        init = spec.pop("init")
        init = init and os.path.join(MODELS, init)
        model_scale, hparams = spec.pop("model_scale", 0), spec.pop("hparams", {})
        name, finish = spec.pop("out"), spec.pop("finish")
        if a.finish and a.finish != finish:
            name, finish = name[:-3] + f"_{a.finish}.pt", a.finish
        out = a.out or os.path.join(MODELS, name)
        lr = a.lr or spec.pop("learning_rate")
        spec.pop("learning_rate", None)  # when --lr was given
        s = settings_for(a, spec)
        cfg = SRTrainConfig(inputs=paths(TRAIN), output_model=out, architecture="fast",
                            scale=a.range[0], max_factor=a.range[1], init_weights=init,
                            model_scale=model_scale, hparams={**hparams, **json.loads(a.hparams)},
                            finish=finish,
                            learning_rate=lr, degradation="blockmean", validation=0.1,
                            seed=a.seed, device="auto", **s)
    else:
        s = settings_for(a, SETTINGS[a.scale])
        out = a.out or os.path.join(MODELS, f"demsr_fast_x{a.scale}.pt")
        cfg = SRTrainConfig(inputs=paths(TRAIN), output_model=out, architecture="fast",
                            scale=a.scale, learning_rate=a.lr or 2e-3, degradation="blockmean",
                            validation=0.1, seed=a.seed, device="auto",
                            hparams={**HPARAMS[a.scale], **json.loads(a.hparams)}, **s)
    log, monitor = timed_log()
    res = run_training(cfg, monitor)
    log(f"best epoch {res.best_epoch}: val RMSE {res.val_rmse_model:.4g} m vs lanczos "
        f"{res.val_rmse_baseline:.4g} m → {out}")


if __name__ == "__main__":
    main()
