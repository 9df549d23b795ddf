"""What the bundled-model training scripts share: run arguments and a timed log."""
import argparse
import time

from demsr.core.monitor import Monitor


def add_run_args(ap: argparse.ArgumentParser, threads: int) -> None:
    """--epochs/--steps (override the script's SETTINGS), --seed, --threads."""
    ap.add_argument("--epochs", type=int, help="override the epochs of SETTINGS")
    ap.add_argument("--steps", type=int, help="override the batches per epoch of SETTINGS")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=threads, help="torch CPU threads (0 = torch's)")


def settings_for(a: argparse.Namespace, settings: dict) -> dict:
    """SETTINGS with the command line's overrides; sets torch's thread count."""
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    s = dict(settings)
    if a.epochs:
        s["epochs"] = a.epochs
    if a.steps:
        s["steps_per_epoch"] = a.steps
    return s


def timed_log():
    """(log, monitor): lines prefixed with the seconds since the start, warnings marked."""
    t0 = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - t0:7.0f}s] {message}", flush=True)

    return log, Monitor(info=log, warning=lambda m: log("WARNING " + m))
