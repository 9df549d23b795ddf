"""The report next to a trained model: NAME_metrics.csv (one row per epoch, 0 = the
starting model) and NAME_curves.png (loss, validation RMSE, ratio to the baseline)."""
from __future__ import annotations

import csv
import os


def report_paths(model_path: str) -> tuple[str, str]:
    stem = os.path.splitext(model_path)[0]
    return stem + "_metrics.csv", stem + "_curves.png"


def write_report(history: list[dict], csv_path: str, png_path: str,
                 baseline: str = "GDAL lanczos") -> None:
    """The CSV always; the curves when matplotlib is there (a bonus, never an error)."""
    if not history:
        return
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - the CSV is the report; the plot is a bonus
        return
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(ep, [h["train_loss"] for h in history])
    ax[0].set_title("training loss")
    ax[1].plot(ep, [h["val_rmse"] for h in history], label="model")
    ax[1].plot(ep, [h["val_rmse_baseline"] for h in history], "--", label=baseline)
    ax[1].set_title("validation RMSE (m)")
    ax[1].legend()
    ax[2].plot(ep, [h["val_ratio"] for h in history])
    ax[2].axhline(1.0, ls="--", c="grey")
    ax[2].set_title(f"RMSE model / {baseline} (geo. mean)")
    for a in ax:
        a.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
