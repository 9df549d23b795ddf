"""Train DEM SR from a configuration JSON (EXPORT_CONFIG of demsr:train) on one process, or
on N under torchrun (DDP): torchrun --nproc_per_node=N -m demsr train --config run.json"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ..core.errors import DemSrError
from ..core.monitor import Monitor


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", required=True, help="training configuration JSON (EXPORT_CONFIG "
                    "of demsr:train)")
    ap.add_argument("--output-model", help="override the config's output_model (.pt)")
    ap.add_argument("--device", help="override the config's device (auto, cpu, cuda)")
    ap.add_argument("--threads", type=int, help="torch CPU threads per process (default: the "
                    "machine's cores shared out among its processes)")
    ap.add_argument("--summary", help="write the result (best epoch, RMSE, history) as JSON here "
                    "(process 0)")


def _monitor(rank: int) -> Monitor:
    """Process 0 logs; the others would repeat it (their errors still reach stderr)."""
    from . import log

    info = log()
    return Monitor(info=info, warning=lambda m: info("WARNING " + m)) if rank == 0 \
        else Monitor()


def run(a: argparse.Namespace) -> int:
    from ..core.devices import import_torch
    from ..core.training.distributed import (Distributed, launched_by_torchrun,
                                             set_threads)
    from ..core.training.config_file import load_config
    from ..core.training.runner import SingleProcess
    from ..core.training.runner import run as run_training
    from ..core.training.tasks import task_for

    procs = None
    try:
        cfg = load_config(a.config)
        changes = {k: v for k, v in (("output_model", a.output_model), ("device", a.device)) if v}
        cfg = dataclasses.replace(cfg, **changes)
        torch = import_torch()
        procs = Distributed(cfg.device) if launched_by_torchrun() else SingleProcess()
        rank = getattr(procs, "rank", 0)
        set_threads(torch, getattr(procs, "cuda", False), a.threads)
        monitor = _monitor(rank)
        if rank == 0:
            world = getattr(procs, "world", 1)
            monitor.info(f"{world} process(es), {cfg.batch_size} crops per batch in all "
                         f"({-(-cfg.batch_size // world)} or fewer each), "
                         f"{torch.get_num_threads()} CPU thread(s) each.")
        if getattr(procs, "world", 1) > cfg.batch_size:
            raise DemSrError(f"BATCH_SIZE {cfg.batch_size} is smaller than the number of "
                             f"processes ({procs.world}); each needs at least one crop.")
        res = run_training(task_for(cfg), monitor, processes=procs)
        if procs.writer:
            monitor.info(f"Model {res.model_path}: best epoch {res.best_epoch}, validation RMSE "
                         f"{res.val_rmse_model:.4g} m (baseline {res.val_rmse_baseline:.4g} m).")
            if a.summary:
                with open(a.summary, "w") as f:
                    json.dump(dataclasses.asdict(res), f, indent=1, default=float)
        return 0
    except DemSrError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if isinstance(procs, Distributed):
            procs.close()
