"""Compute device detection: CUDA, Apple MPS or CPU, and why a GPU was not used."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from .errors import DemSrError, TorchMissing, TorchTooOld
from .torch_policy import too_old

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def import_torch():
    """Import torch lazily, with an installation hint when it is missing or older than
    core/torch_policy.py accepts (checked in every run, qgis_process included)."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install raising OSError
        raise TorchMissing(str(exc)) from None
    version = str(getattr(torch, "__version__", ""))
    if version and too_old(version):
        raise TorchTooOld(version)
    return torch


@dataclass(frozen=True)
class DeviceChoice:
    device: str          # torch device string: "cuda:0", "mps", "cpu"
    description: str     # for the log: what is used, and with which runtime
    note: str = ""       # why a present GPU is not used, if so
    backend: str = "torch"  # the runtime that runs the networks (core/backends.py)


def _cpu_description(torch) -> str:
    return f"CPU ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


def _cuda_status(torch) -> tuple[bool, str]:
    if torch.version.cuda is None:
        return False, "this PyTorch build has no CUDA support (CPU-only wheel)"
    if not torch.cuda.is_available():
        return False, (f"PyTorch is built for CUDA {torch.version.cuda} but finds no usable "
                       "NVIDIA GPU or driver")
    return True, ""


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def gpu_available() -> bool:
    """Whether PyTorch sees a CUDA or Apple MPS device (imports torch)."""
    torch = import_torch()
    return _cuda_status(torch)[0] or _mps_available(torch)


def select_device(requested: str = "auto", backend: Optional[str] = None) -> DeviceChoice:
    """The device to run on; 'auto' prefers CUDA, then MPS, then CPU. `backend` None: the
    runtime that runs models best here (core/backends.choose); "torch" for training."""
    from . import backends

    requested = (requested or "auto").lower()
    if requested not in DEVICE_CHOICES:
        raise DemSrError(f"Unknown device '{requested}'. Use one of: {', '.join(DEVICE_CHOICES)}.")
    backend = backend or backends.choose(requested)
    if backend == backends.ONNX:
        backends.import_runtime(backends.ONNX)
        note = ""
        if requested == "auto" and backends.installed_version(backends.TORCH):
            version = backends.installed_version(backends.TORCH)
            note = "no GPU used: " + ("this PyTorch build is CPU-only" if version.endswith("+cpu")
                                      else "this machine has no GPU driver" if not
                                      backends.gpu_driver_present() else
                                      "PyTorch finds no usable GPU")
        return DeviceChoice("cpu", f"CPU ({backends.cpu_threads()} threads, {os.cpu_count()} "
                                   f"cores), {backends.runtime_text(backends.ONNX)}", note,
                            backends.ONNX)
    choice = _torch_device(requested)
    return DeviceChoice(choice.device, f"{choice.description}, "
                        f"{backends.runtime_text(backends.TORCH)}", choice.note, backends.TORCH)


def _torch_device(requested: str) -> DeviceChoice:
    torch = import_torch()
    cuda_ok, cuda_why = _cuda_status(torch)
    if requested in ("auto", "cuda") and cuda_ok:
        props = torch.cuda.get_device_properties(0)
        return DeviceChoice("cuda:0", f"CUDA GPU {props.name} "
                                      f"({props.total_memory / 2**30:.1f} GiB)")
    if requested == "cuda":
        raise DemSrError(f"DEVICE=cuda was requested but {cuda_why}. Use DEVICE=auto or cpu, "
                         "or install a CUDA build of PyTorch matching your driver.")
    if requested in ("auto", "mps") and _mps_available(torch):
        return DeviceChoice("mps", "Apple GPU (MPS)")
    if requested == "mps":
        raise DemSrError("DEVICE=mps was requested but Apple's Metal backend is not available. "
                         "Use DEVICE=auto or cpu.")
    if requested == "cpu":
        note = "a CUDA GPU is present but DEVICE=cpu was requested" if cuda_ok else ""
        return DeviceChoice("cpu", _cpu_description(torch), note)
    return DeviceChoice("cpu", _cpu_description(torch), f"no GPU used: {cuda_why}")


def is_out_of_memory(exc: BaseException) -> bool:
    """A GPU allocation failure that a smaller batch may avoid."""
    torch = import_torch()
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
