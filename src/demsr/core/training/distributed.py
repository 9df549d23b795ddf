"""Training one model on N processes with torchrun: DistributedDataParallel (DDP) over NCCL
on GPUs, gloo on CPUs. The runner (runner.py) is the same; `Distributed` fills its hooks.

    torchrun --nproc_per_node=N -m demsr train --config run.json

(the folder holding the `demsr` package on PYTHONPATH, or a source checkout's venv of
`make venv`; the command line is demsr/cli/train.py). `run.json` is a
training configuration (config_file.py), e.g. exported by demsr:train's EXPORT_CONFIG.
Without torchrun the same command trains in one process.

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

import datetime
import os
from typing import Optional

from ..devices import import_torch, select_device
from ..errors import DemSrError
from .runner import SingleProcess, Task

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


def set_threads(torch, cuda: bool, requested: Optional[int]) -> None:
    """CPU threads per process: the cores shared out among this machine's processes
    (torchrun sets OMP_NUM_THREADS=1 for several processes, which starves large CPUs)."""
    if requested:
        torch.set_num_threads(requested)
    elif not cuda:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
