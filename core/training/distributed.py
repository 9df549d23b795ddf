"""Training one model on N processes with torchrun: DistributedDataParallel (DDP) over NCCL
on GPUs, gloo on CPUs. The runner (runner.py) is the same; `Distributed` fills its hooks.

    torchrun --nproc_per_node=N -m demsr.core.training.distributed --config run.json

(the folder holding the `demsr` package on PYTHONPATH; `scripts/train_distributed.py` does
that for a source checkout). `run.json` is a training configuration (runconfig.py), e.g.
exported by demsr:train's EXPORT_CONFIG. Without torchrun the same command trains in one
process.

How the work is split, so that N processes train as one process would on the same seed:
- every process draws the same batches (the same seeded stream) and computes a disjoint
  share of each (rank r takes crops r, r+N, …): no two processes see the same crop, and
  together they see exactly the crops one process would. BATCH_SIZE is the global batch.
- DDP averages the gradients, so with a loss that is a mean over crops (SR) each step is
  the single-process step up to rounding. DS-HAT's loss is normalised per process (close,
  not equal). GISR's BatchNorm is synchronised on GPUs (SyncBatchNorm); on CPUs its
  statistics are per process.
- process 0 validates and broadcasts the figures, so every process takes the same
  best-epoch decision; only it writes the model, the resume file and the report; all
  wait for each other before finishing. Resume needs the output folder visible to every
  process (always so on one machine).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Optional

from ..devices import import_torch, select_device
from ..errors import DemSrError
from ..monitor import Monitor
from .runconfig import load_config
from .runner import SingleProcess, Task, run

TIMEOUT = datetime.timedelta(minutes=60)  # a validation on process 0 keeps the others waiting


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


class Distributed(SingleProcess):
    """One process of a torchrun/DDP run (RANK, WORLD_SIZE, LOCAL_RANK from torchrun)."""

    def __init__(self, device_request: str = "auto"):
        torch = import_torch()
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.cuda = select_device(device_request, backend="torch").device.startswith("cuda")
        if self.cuda:
            if self.local_rank >= torch.cuda.device_count():
                raise DemSrError(f"Process {self.rank} has local rank {self.local_rank} but this "
                                 f"machine has {torch.cuda.device_count()} visible GPU(s): "
                                 "use --nproc_per_node at most the number of GPUs.")
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.cuda else "gloo", timeout=TIMEOUT)
        self.writer = self.rank == 0
        self.share = slice(self.rank, None, self.world)

    def device(self, device: str) -> str:
        return f"cuda:{self.local_rank}" if self.cuda else device

    def wrap(self, model):
        from torch.nn.parallel import DistributedDataParallel

        if self.cuda:  # BatchNorm statistics over the global batch (GISR)
            model = self.torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[self.local_rank] if self.cuda else None)

    def losses(self, losses: list) -> list:
        """Each batch's loss averaged over the processes' shares (equal shares: the loss of
        the whole batch)."""
        t = self.torch.tensor(losses, dtype=self.torch.float64, device=self.device("cpu"))
        self.dist.all_reduce(t)
        return (t / self.world).tolist()

    def validate(self, task: Task, model) -> dict:
        box = [task.validate(model) if self.writer else None]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def finish(self) -> None:
        self.dist.barrier()

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def _monitor(rank: int) -> Monitor:
    """Process 0 logs; the others would repeat it (their errors still reach stderr)."""
    t0 = time.time()

    def log(prefix: str):
        return lambda m: print(f"[{time.time() - t0:7.1f}s]{prefix} {m}", flush=True)

    return Monitor(info=log(""), warning=log(" WARNING")) if rank == 0 else Monitor()


def _threads(torch, cuda: bool, requested: Optional[int]) -> None:
    """CPU threads per process: the cores shared out among this machine's processes
    (torchrun sets OMP_NUM_THREADS=1 for several processes, which starves large CPUs)."""
    if requested:
        torch.set_num_threads(requested)
    elif not cuda:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m demsr.core.training.distributed",
        description="Train DEM SR on one or more processes (run it under torchrun for DDP).")
    ap.add_argument("--config", required=True, help="training configuration JSON (EXPORT_CONFIG "
                    "of demsr:train)")
    ap.add_argument("--output-model", help="override the config's output_model (.pt)")
    ap.add_argument("--device", help="override the config's device (auto, cpu, cuda)")
    ap.add_argument("--threads", type=int, help="torch CPU threads per process (default: the "
                    "machine's cores shared out among its processes)")
    ap.add_argument("--summary", help="write the result (best epoch, RMSE, history) as JSON here "
                    "(process 0)")
    a = ap.parse_args(argv)
    from .train import TASKS

    procs = None
    try:
        cfg = load_config(a.config)
        changes = {k: v for k, v in (("output_model", a.output_model), ("device", a.device)) if v}
        cfg = dataclasses.replace(cfg, **changes)
        task_cls = TASKS[type(cfg)]
        torch = import_torch()
        procs = Distributed(cfg.device) if launched_by_torchrun() else SingleProcess()
        rank = getattr(procs, "rank", 0)
        _threads(torch, getattr(procs, "cuda", False), a.threads)
        monitor = _monitor(rank)
        if rank == 0:
            world = getattr(procs, "world", 1)
            monitor.info(f"{world} process(es), {cfg.batch_size} crops per batch in all "
                         f"({-(-cfg.batch_size // world)} or fewer each), "
                         f"{torch.get_num_threads()} CPU thread(s) each.")
        if getattr(procs, "world", 1) > cfg.batch_size:
            raise DemSrError(f"BATCH_SIZE {cfg.batch_size} is smaller than the number of "
                             f"processes ({procs.world}); each needs at least one crop.")
        res = run(task_cls(cfg), monitor, processes=procs)
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


if __name__ == "__main__":
    sys.exit(main())
