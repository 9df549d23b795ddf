"""`make ddp-check`: a small real training on 2 processes (torchrun, DDP over gloo on this
machine's CPUs) against the same training in one process, end to end through
`python -m demsr train`; fails when they differ beyond rounding.

Default: FastSR ×2 (the bundled architecture and size) on three training DEMs of
scripts/default_data.py, 3 epochs of 20 batches of 16 crops, seed 42. Results:
build/ddp_check/result.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import demsr  # noqa: F401 - puts the plugin's private dependency folder on sys.path

from default_data import paths  # noqa: E402

from demsr import dependency_dir  # noqa: E402
from demsr.core.training.config import SRTrainConfig  # noqa: E402
from demsr.core.training.config_file import save_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ["flopy_sagehen_10m.tif", "spDataLarge_mongon_30m.tif", "oggm_south_glacier_20m.tif"]
COMMAND = ["-m", "demsr", "train"]  # torchrun takes the module the same way (-m)


def launch(nproc: int, config: str, model: str, summary: str) -> float:
    """Seconds one training took (1 process: plain; more: torchrun)."""
    env = dict(os.environ, PYTHONPATH=dependency_dir())
    args = ["--config", config, "--output-model", model, "--summary", summary]
    cmd = [sys.executable, *COMMAND, *args] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", *COMMAND, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    print(proc.stdout, end="")
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        sys.exit(f"ddp-check: the {nproc}-process training failed (exit {proc.returncode})")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "build" / "ddp_check"))
    a = ap.parse_args()
    import torch

    os.makedirs(a.out, exist_ok=True)
    config = os.path.join(a.out, "run.json")
    save_config(SRTrainConfig(inputs=paths(DATA), output_model=os.path.join(a.out, "x.pt"),
                              architecture="fast", scale=2, patch_size=64, epochs=a.epochs,
                              batch_size=a.batch, steps_per_epoch=a.steps, device="cpu",
                              seed=42, resume=False), config)
    runs = {}
    for n in (1, a.nproc):
        model, summary = (os.path.join(a.out, f"{n}proc{ext}") for ext in (".pt", ".json"))
        print(f"--- {n} process(es)")
        seconds = launch(n, config, model, summary)
        with open(summary) as f:
            runs[n] = dict(json.load(f), seconds=seconds, model=model)
    one, many = runs[1], runs[a.nproc]
    d_rmse = max(abs(h1["val_rmse"] - h2["val_rmse"])
                 for h1, h2 in zip(one["history"], many["history"]))
    d_loss = max(abs(h1["train_loss"] - h2["train_loss"]) for h1, h2 in
                 zip(one["history"][1:], many["history"][1:]))
    sd1 = torch.load(one["model"], weights_only=True)["state_dict"]
    sd2 = torch.load(many["model"], weights_only=True)["state_dict"]
    d_w = max(float((sd1[k].float() - sd2[k].float()).abs().max()) for k in sd1)
    result = dict(nproc=a.nproc, seconds_1=round(one["seconds"], 1),
                  seconds_n=round(many["seconds"], 1), best_epoch_1=one["best_epoch"],
                  best_epoch_n=many["best_epoch"], val_rmse_1=one["val_rmse_model"],
                  val_rmse_n=many["val_rmse_model"], max_val_rmse_diff_m=d_rmse,
                  max_train_loss_diff=d_loss, max_weight_diff=d_w)
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n1 process: {one['seconds']:.1f} s, best epoch {one['best_epoch']}, validation RMSE "
          f"{one['val_rmse_model']:.6g} m")
    print(f"{a.nproc} processes: {many['seconds']:.1f} s, best epoch {many['best_epoch']}, "
          f"validation RMSE {many['val_rmse_model']:.6g} m")
    print(f"largest difference: validation RMSE {d_rmse:.3g} m, training loss {d_loss:.3g}, "
          f"weights {d_w:.3g}")
    ok = (one["best_epoch"] == many["best_epoch"] and d_rmse <= 1e-4 and d_w <= 1e-3
          and d_loss <= 1e-4)
    print("ddp-check: OK" if ok else "ddp-check: FAILED (beyond the tolerances: RMSE 1e-4 m, "
          "weights 1e-3, loss 1e-4, same best epoch)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
