"""The installation's status, as the Status & dependencies dialog shows it (text or JSON).

Plugin, QGIS, Python, NumPy, PyTorch and ONNX Runtime versions, the dependency folder, the
device and runtime that run models, and the bundled models with their held-out figures."""
from __future__ import annotations

import argparse
import json


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--json", action="store_true",
                    help="print {section: {label: value}} as JSON instead of text")


def run(a: argparse.Namespace) -> int:
    from ..desktop.status import collect  # the dialog's own rows (no Qt widget involved)

    sections = collect()
    if a.json:
        print(json.dumps({title: dict(rows) for title, rows in sections}, indent=1,
                         ensure_ascii=False))
        return 0
    for title, rows in sections:
        print(title)
        width = max((len(label) for label, _ in rows), default=0)
        for label, value in rows:
            print(f"  {label:<{width}}  {value}")
    return 0
