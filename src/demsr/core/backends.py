"""The one inference interface: a loaded network runs numpy batches on PyTorch or ONNX Runtime.

Which runtime runs a model (`choose`): PyTorch for a GPU (CUDA, Apple MPS) and whenever
ONNX Runtime is missing; ONNX Runtime on the CPU whenever it is installed (measured 1.3–1.8×
faster than PyTorch on the bundled models here, and its import 0.2–0.4 s against 1.3–1.6 s:
docs/benchmarks.md), and always where PyTorch is missing. DEMSR_BACKEND=torch or onnx forces
one (benchmarks, comparisons). Which runtimes are installed is answered from package metadata,
without importing either: a CPU-only torch build, or a GPU build on a machine with no GPU
driver, is never imported just to find no GPU.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from typing import Optional

import numpy as np

from .errors import DemSrError, RuntimeMissing  # noqa: F401 - RuntimeMissing re-exported

TORCH, ONNX = "torch", "onnx"
NAMES = {TORCH: "PyTorch", ONNX: "ONNX Runtime"}
_MODULES = {TORCH: "torch", ONNX: "onnxruntime"}
ENV = "DEMSR_BACKEND"
_THREADS: Optional[int] = None   # set_threads(): CPU threads per process (mosaic workers)
MAX_LANES = 2   # network calls at once from the caller's threads (Network.lanes): each lane
#                 holds one tile in memory


def installed_version(key: str) -> str:
    """The runtime's version if it can be imported here, else '' (no import done)."""
    module = _MODULES[key]
    if module in sys.modules:
        mod = sys.modules[module]
        return "" if mod is None else str(getattr(mod, "__version__", "?"))
    try:
        if importlib.util.find_spec(module) is None:
            return ""
    except (ImportError, ValueError):
        return ""
    dist = "onnxruntime" if key == ONNX else "torch"
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        # another build of the runtime (onnxruntime-gpu, a source build): ask it
        try:
            return str(import_runtime(key).__version__)
        except DemSrError:
            return ""


def gpu_driver_present() -> bool:
    """Whether this machine has what a PyTorch GPU needs, known without importing torch: an
    NVIDIA driver (Linux: /proc/driver/nvidia, /dev/nvidiactl; Windows: nvcuda.dll), the ROCm
    kernel driver (/dev/kfd), or Apple silicon (MPS). pip's default torch on Linux is a CUDA
    build: without this, every DEVICE=auto run on a machine without a GPU paid its import
    (1.3–1.6 s) to learn that. Elsewhere (other systems): True, and torch is asked."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl",
                                                "/dev/kfd"))
    if sys.platform == "win32":
        system = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32")
        return os.path.exists(os.path.join(system, "nvcuda.dll"))
    if sys.platform == "darwin":
        import platform

        return platform.machine() == "arm64"
    return True


def torch_may_have_gpu() -> bool:
    """False for a CPU-only torch wheel (version '+cpu') or a machine without a GPU driver,
    known without importing torch."""
    version = installed_version(TORCH)
    return bool(version) and not version.endswith("+cpu") and gpu_driver_present()


def import_runtime(key: str):
    """Import torch or onnxruntime; RuntimeMissing (naming both) when neither works."""
    if key == TORCH:
        from .devices import import_torch

        return import_torch()
    try:
        import onnxruntime
    except Exception as exc:  # ImportError, or a broken wheel raising OSError
        raise RuntimeMissing(f"onnxruntime: {exc}") from None
    return onnxruntime


def choose(requested: str = "auto") -> str:
    """TORCH or ONNX for a run with DEVICE=`requested` (see the module docstring)."""
    have_torch, have_ort = bool(installed_version(TORCH)), bool(installed_version(ONNX))
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in (TORCH, ONNX):
        if not (have_torch if forced == TORCH else have_ort):
            raise DemSrError(f"{ENV}={forced} but {NAMES[forced]} is not installed for this "
                             "Python; unset it or install that runtime.")
        return forced
    if not have_torch and not have_ort:
        raise RuntimeMissing()
    if requested in ("cuda", "mps"):
        if not have_torch:
            raise DemSrError(
                f"DEVICE={requested} needs PyTorch (ONNX Runtime, installed here, runs the "
                "models on the CPU only). Use DEVICE=auto or cpu, or install PyTorch with "
                "Raster ▸ DEM Super-Resolution ▸ Install / repair dependencies….")
        return TORCH
    if not have_ort:
        return TORCH
    if requested == "auto" and have_torch and torch_may_have_gpu():
        from .devices import gpu_available

        if gpu_available():
            return TORCH
    return ONNX


def runtime_text(key: str) -> str:
    """'ONNX Runtime 1.32.0' — for the log."""
    return f"{NAMES[key]} {installed_version(key) or '?'}"


def set_threads(threads: int) -> None:
    """CPU threads for this process's networks (either runtime), e.g. per mosaic worker."""
    global _THREADS
    _THREADS = max(1, int(threads))
    if sys.modules.get("torch") is not None:  # else TorchNetwork applies it on import
        sys.modules["torch"].set_num_threads(_THREADS)


def cpu_threads() -> int:
    """The CPU threads a network uses here."""
    if _THREADS:
        return _THREADS
    if sys.modules.get("torch") is not None:
        return int(sys.modules["torch"].get_num_threads())
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)


class Network:
    """A network ready to run: `halo` pixels of context, `runtime` for the log, and
    run(*batches) → float32 numpy (the batches are the network's inputs, each (B,C,H,W)).

    `lanes`: how many run() calls a caller may make at once from its own threads, each then
    on one CPU thread (use_lanes), to use the CPU better than one call on all threads; 1
    where the runtime does not gain from that (PyTorch, GPUs)."""

    halo: int = 0
    runtime: str = ""
    device: str = "cpu"
    lanes: int = 1

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def use_lanes(self, lanes: int) -> None:
        """Calls will come `lanes` at a time (1 ≤ lanes ≤ self.lanes): share the threads."""

    def out_of_memory(self, exc: BaseException) -> bool:
        """Whether `exc` is an allocation failure that a smaller batch may avoid."""
        return False

    def release(self) -> None:
        """Give cached accelerator memory back (after an out-of-memory failure)."""


class TorchNetwork(Network):
    """An nn.Module on a torch device, in channels-last layout (about twice as fast on CPUs)."""

    def __init__(self, module, device: str):
        torch = import_runtime(TORCH)
        if _THREADS:
            torch.set_num_threads(_THREADS)
        self._torch = torch
        self.module = module.to(device).to(memory_format=torch.channels_last)
        self.device = device
        self.halo = int(module.halo)
        self.runtime = runtime_text(TORCH)

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        torch = self._torch

        def tensor(a: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
            return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t

        with torch.inference_mode():
            return self.module(*[tensor(a) for a in inputs]).float().cpu().numpy()

    def out_of_memory(self, exc: BaseException) -> bool:
        from .devices import is_out_of_memory

        return is_out_of_memory(exc)

    def release(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()


class OnnxNetwork(Network):
    """A verified .onnx model (core/nets/onnx_model.py) in an ONNX Runtime CPU session.

    Lanes: by default a call runs on all the threads (ONNX Runtime's default, one per physical
    core, or set_threads); with use_lanes(n) the calls come n at a time and each runs on
    cpu_threads()/n of them in a second session (same graph, same results bit for bit). On
    the 2-core machine two one-thread calls at once did 10–30 % more tiles per second than
    one two-thread call after another, more under load from other processes (a two-thread
    call waits for its slower thread at every operator); docs/benchmarks.md."""

    def __init__(self, model_bytes: bytes, halo: int, input_names: list[str]):
        self._model = model_bytes
        self._sessions: dict = {}
        self.lanes = min(MAX_LANES, cpu_threads())
        self.session = self._session(_THREADS or 0)  # 0: ONNX Runtime's own (physical cores)
        found = [i.name for i in self.session.get_inputs()]
        if found != list(input_names):
            raise DemSrError(f"The ONNX model's inputs {found} are not those its header "
                             f"records ({list(input_names)}); it is damaged.")
        self.input_names = found
        self.halo = int(halo)
        self.runtime = runtime_text(ONNX)

    def _session(self, threads: int):
        """The session whose calls each run on `threads` CPU threads (made once)."""
        if threads not in self._sessions:
            ort = import_runtime(ONNX)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            # no memory pattern (one block planned for all of a run's tensors): measured on
            # the (1, 2) model's 812² window, peak RSS 677 MB instead of 809 (one call), 953
            # instead of 1248 (two at once), no slower; the results do not depend on it
            options.enable_mem_pattern = False
            options.log_severity_level = 3  # warnings about unused initialisers are noise
            self._sessions[threads] = ort.InferenceSession(
                self._model, options, providers=["CPUExecutionProvider"])
        return self._sessions[threads]

    def use_lanes(self, lanes: int) -> None:
        lanes = max(1, min(lanes, self.lanes))
        self.session = self._session((_THREADS or 0) if lanes == 1 else
                                     max(1, cpu_threads() // lanes))

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        feed = {n: np.ascontiguousarray(a, dtype=np.float32)
                for n, a in zip(self.input_names, inputs)}
        return self.session.run(None, feed)[0]

    def out_of_memory(self, exc: BaseException) -> bool:
        text = str(exc).lower()  # ONNX Runtime's arena says "Failed to allocate memory"
        return any(w in text for w in ("out of memory", "bad_alloc", "failed to allocate"))
