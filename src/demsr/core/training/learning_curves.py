"""The report next to a trained model: NAME_metrics.csv (one row per epoch, 0 = the
starting model) and NAME_curves.png (loss, validation RMSE, ratio to the baseline), each
replaced whole (core/atomic.py) after every epoch, and NAME_report.html at the end."""
from __future__ import annotations

import csv
import os

from ..atomic import replacing, write_atomic


def curve_paths(model_path: str) -> tuple[str, str]:
    stem = os.path.splitext(model_path)[0]
    return stem + "_metrics.csv", stem + "_curves.png"


def write_curves(history: list[dict], csv_path: str, png_path: str,
                 baseline: str = "GDAL lanczos") -> None:
    """The CSV always; the curves when matplotlib is there (a bonus, never an error)."""
    if not history:
        return
    with replacing(csv_path) as tmp, open(tmp, "w", newline="") as f:
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
    with replacing(png_path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def write_report_page(model_path: str, csv_path: str, png_path: str, best_epoch: int) -> str:
    """NAME_report.html beside the model: the learning curves and the per-epoch table, so the
    Processing dialog's results viewer shows them (QGIS shows HTML outputs, not pictures)."""
    import html

    path = os.path.splitext(model_path)[0] + "_report.html"
    rows = []
    if os.path.isfile(csv_path):
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
    name = html.escape(os.path.basename(model_path))
    cell = "<td>{}</td>".format
    table = "".join(
        ("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in row) + "</tr>") if i == 0 else
        ("<tr" + (" class='best'" if row[0] == str(best_epoch) else "") + ">"
         + "".join(cell(html.escape(c)) for c in row) + "</tr>")
        for i, row in enumerate(rows))
    picture = (f"<p><img src='{html.escape(os.path.basename(png_path))}' "
               "alt='learning curves'></p>" if os.path.isfile(png_path) else
               "<p>No learning-curves picture (matplotlib is not installed).</p>")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Training {name}</title>"
           "<style>td,th{padding:2px 6px;text-align:right}tr.best{font-weight:bold;"
           "background:#e8f4e8}</style></head><body>"
           f"<h1>Training {name}</h1><p>Saved model: epoch {best_epoch} (bold below; "
           "epoch 0 = the starting model).</p>"
           f"{picture}<table>{table}</table></body></html>")
    write_atomic(path, doc)
    return path
