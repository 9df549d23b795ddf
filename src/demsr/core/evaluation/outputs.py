"""Evaluate DEM's files: the CSV table, the JSON record, the error raster and the HTML
report, staged beside their destinations and moved into place together (core/staging.py):
a failed or killed run changes none of them."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING

import numpy as np

from ..monitor import Monitor
from ..raster.write import write_array
from ..staging import staged
from .metrics import METRICS

if TYPE_CHECKING:
    from .evaluate import EvaluationRequest, EvaluationResult


def _clean(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def csv_text(res: EvaluationResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["region", "dem", "pixels", *METRICS])
    for region, by_dem in res.metrics.items():
        for name in res.names:
            if name in by_dem:
                m = by_dem[name]
                w.writerow([region, name, m["n"], *(f"{m[k]:.6g}" for k in METRICS)])
    return buf.getvalue()


def json_obj(res: EvaluationResult, req: EvaluationRequest) -> dict:
    return {
        "result": res.names[0], "reference": res.reference_name,
        "reference_path": req.reference_path, "input_path": req.input_path,
        "alignment": res.alignment, "psnr_peak_m": res.peak,
        "psnr_peak": "elevation range (max - min) of the reference over the evaluated cells",
        "stream_threshold_cells": req.stream_threshold,
        "grid": {"width": res.grid.width, "height": res.grid.height,
                 "transform": list(res.grid.transform)[:6],
                 "crs": res.grid.crs.to_wkt() if res.grid.crs is not None else None},
        "pixels": res.pixels, "warnings": res.warnings,
        "uncertainty": ({k: _clean(v) for k, v in res.calibration.as_dict().items()}
                        if res.calibration else None),
        "metrics": {r: {n: {k: _clean(v) for k, v in m.items()} for n, m in by.items()}
                    for r, by in res.metrics.items()},
    }


def write_outputs(req: "EvaluationRequest", res: "EvaluationResult", err: np.ndarray,
                  reference: np.ndarray, dems: list, slope: np.ndarray, regions: dict,
                  monitor: Monitor) -> None:
    """Every requested file of the run, all or none; res.outputs names those written."""
    with staged() as stage:
        if req.output_error:
            write_array(stage.file(req.output_error, raster=True), err, res.grid)
            res.outputs["error"] = req.output_error
        if req.output_table:
            stage.write_text(req.output_table, csv_text(res))
            res.outputs["table"] = req.output_table
        if req.output_json:
            stage.write_text(req.output_json, json.dumps(json_obj(res, req), indent=2))
            res.outputs["json"] = req.output_json
        if req.output_html:
            from .html_report import write_html_report

            write_html_report(req.output_html, res, reference, dems, slope, regions, req,
                              stage, monitor)
            res.outputs["html"] = req.output_html
        monitor.check()
        stage.commit()
