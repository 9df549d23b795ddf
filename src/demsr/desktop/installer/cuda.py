"""NVIDIA driver detection and the PyTorch build that matches it.

A CPU-only torch on a GPU machine is the second most reported problem of torch plugins;
the driver's CUDA version (from nvidia-smi) decides which CUDA wheel can run."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

# PyTorch wheel indexes by CUDA runtime, newest first: a driver runs runtimes up to its own.
CUDA_BUILDS = [((12, 8), "cu128"), ((12, 6), "cu126"), ((12, 4), "cu124")]
INDEX = "https://download.pytorch.org/whl/{build}"


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    driver: str
    cuda: str          # highest CUDA runtime the driver supports, e.g. "12.6"
    memory_mib: int = 0


def nvidia_smi_path() -> str | None:
    found = shutil.which("nvidia-smi")
    if found:
        return found
    if sys.platform == "win32":
        for base in (os.environ.get("SystemRoot", r"C:\Windows") + r"\System32",
                     os.environ.get("ProgramFiles", r"C:\Program Files")
                     + r"\NVIDIA Corporation\NVSMI"):
            path = os.path.join(base, "nvidia-smi.exe")
            if os.path.isfile(path):
                return path
    return None


def parse_nvidia_smi(query_csv: str, banner: str) -> NvidiaGpu | None:
    """query_csv: `--query-gpu=name,driver_version,memory.total --format=csv,noheader,nounits`;
    banner: plain `nvidia-smi` output, whose header says "CUDA Version: 12.6"."""
    line = next((ln for ln in query_csv.splitlines() if ln.strip()), "")
    parts = [p.strip() for p in line.split(",")]
    if len(parts) < 2:
        return None
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner or "")
    memory = int(float(parts[2])) if len(parts) > 2 and re.match(r"^[\d.]+$", parts[2]) else 0
    return NvidiaGpu(parts[0], parts[1], cuda.group(1) if cuda else "", memory)


def detect_nvidia(timeout: float = 10) -> NvidiaGpu | None:
    exe = nvidia_smi_path()
    if not exe:
        return None
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        query = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader,nounits"], capture_output=True,
                               text=True, timeout=timeout, creationflags=flags)
        banner = subprocess.run([exe], capture_output=True, text=True, timeout=timeout,
                                creationflags=flags)
    except (OSError, subprocess.SubprocessError):
        return None
    if query.returncode != 0:
        return None
    return parse_nvidia_smi(query.stdout, banner.stdout)


def suggest_build(gpu: NvidiaGpu | None, platform: str = sys.platform) -> tuple[str, str]:
    """(build, reason): 'cpu' or a CUDA build name such as 'cu126'."""
    if platform == "darwin":
        return "cpu", "macOS: the standard build uses the Apple GPU (MPS) when there is one"
    if gpu is None:
        return "cpu", "no NVIDIA driver found (nvidia-smi)"
    try:
        have = tuple(int(x) for x in gpu.cuda.split(".")[:2])
    except ValueError:
        have = ()
    for need, build in CUDA_BUILDS:
        if have and have >= need:
            return build, f"{gpu.name}, driver {gpu.driver} supports CUDA {gpu.cuda}"
    return "cpu", (f"{gpu.name}: driver {gpu.driver} (CUDA {gpu.cuda or '?'}) is older than "
                   "the oldest CUDA build (12.4); update the NVIDIA driver to use the GPU")
