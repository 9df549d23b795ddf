"""Train the bundled DS-HAT void-repair model: `make train-dshat` runs this.

    python scripts/train_dshat.py [--auxiliary] [--epochs 18 --steps 60 --threads 1 --out PATH]

Terrain channels only (no Sentinel-2 data is available to train on here).
HR DEMs of the fixed TRAIN list (scripts/default_data.py) become training
scenes: block mean ×1 (void repair on the DEM's own grid) and ×2, synthetic
radar-like voids (5–60 px), biharmonic first fill, GDAL Lanczos onto the HR
grid, terrain derivatives; seed 42. The held-out validation DEMs are never read.

--auxiliary trains a model for Void repair with AUXILIARY instead (build/models/
demsr_dshat_aux.pt, not bundled: docs/quality.md):
×1 only, a synthetic second product per scene (core.nodata.synthetic.
training_auxiliary_params), the delta surface fill as first fill, AUX_SETTINGS/AUX_HPARAMS.
"""
import argparse
import os
import time

import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path
from default_data import TRAIN, paths  # noqa: E402
from demsr.core.nets.bundled import MODELS_DIR  # noqa: E402
from demsr.core.training.config import DSHATTrainConfig  # noqa: E402
from demsr.core.training.train import run_training  # noqa: E402
from training_cli import add_run_args, settings_for, timed_log  # noqa: E402

SETTINGS = dict(patch_size=64, epochs=18, steps_per_epoch=60, batch_size=8,
                learning_rate=1e-3, factors=[1, 2], void_coverage=0.10, scene_every=3,
                l1_weight=0.85, gradient_weight=0.10, void_weight=1.0, validation=0.1)
# A fifth of the default network's parameters and a 16-px halo instead of 28: in voids it
# matches the former 124 k-parameter model within ±1.5 % per held-out DEM at a sixth of the
# cost (docs/experiments.md, "A smaller DS-HAT").
HPARAMS = dict(features=16, growth=8, blocks=1, dense_blocks=2, convs=3, support_features=12,
               se_blocks=1, se_radius=3)


# With an auxiliary DEM: repair on the DEM's own grid (the grid change is Super-resolve's), the
# loss in voids (outside them the input is kept), a wider network than the terrain-only one.
AUX_SETTINGS = {**SETTINGS, "factors": [1], "void_weight": 5.0, "epochs": 16}
AUX_HPARAMS = dict(HPARAMS, features=24, growth=12, support_features=16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--auxiliary", action="store_true",
                    help="train the model for AUXILIARY (synthetic second products)")
    add_run_args(ap, threads=1)
    a = ap.parse_args()
    # the auxiliary model is not bundled (dshat_inputs.NO_BUNDLED_AUX_MODEL): it goes to build/
    build = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
    a.out = a.out or (os.path.join(build, "models", "demsr_dshat_aux.pt") if a.auxiliary
                      else os.path.join(MODELS_DIR, "demsr_dshat.pt"))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    s = settings_for(a, AUX_SETTINGS if a.auxiliary else SETTINGS)
    t0 = time.time()
    cfg = DSHATTrainConfig(inputs=paths(TRAIN), output_model=a.out, seed=a.seed, device="auto",
                           hparams=AUX_HPARAMS if a.auxiliary else HPARAMS,
                           synthetic_auxiliary=a.auxiliary, **s)
    log, monitor = timed_log()
    res = run_training(cfg, monitor)
    log(f"best epoch {res.best_epoch}: void RMSE {res.val_rmse_model:.4g} m vs first fill "
        f"{res.val_rmse_baseline:.4g} m → {a.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
