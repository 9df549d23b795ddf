"""Is PyTorch there, and new enough? Answered without importing it (QGIS start-up stays fast)."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass

MIN_TORCH = (2, 0)
# The CPU build the installer proposes; the same version `make deps` installs.
TORCH_PIN = "2.13.0"
# Optional "extras", never needed inside QGIS: Dask distributed for `python -m demsr mosaic`
# (the same pins as scripts/requirements-extras.txt, which `make deps` installs).
EXTRAS = ["dask[distributed]==2026.8.0"]

# What the installer proposes first to a user who only runs models: ONNX Runtime, the newest
# wheel pip finds for this Python and platform (no macOS x86 wheels after 1.23.2, so pip takes
# that one there; on Windows 1.22 and later import in 8–11 s, onnxruntime issue 32220, so
# the last release before it). Sizes: docs/onnx.md.
ONNXRUNTIME_SPEC = {"win32": "onnxruntime<1.22"}
ONNXRUNTIME_DEFAULT = "onnxruntime"
# onnxruntime 1.21.1 win_amd64 wheels: 12.3 MB; newest macOS arm64 ~23 MB, Linux ~28 MB
ONNXRUNTIME_DOWNLOAD = {"win32": "~12 MB", "darwin": "~23 MB"}


def onnxruntime_requirement(platform: str) -> str:
    return ONNXRUNTIME_SPEC.get(platform, ONNXRUNTIME_DEFAULT)


def onnxruntime_download(platform: str) -> str:
    return ONNXRUNTIME_DOWNLOAD.get(platform, "~28 MB")


@dataclass(frozen=True)
class TorchState:
    installed: bool
    version: str = ""
    location: str = ""
    too_old: bool = False

    @property
    def usable(self) -> bool:
        return self.installed and not self.too_old

    def problem(self) -> str:
        if not self.installed:
            return "PyTorch is not installed for the Python that QGIS runs"
        if self.too_old:
            return (f"PyTorch {self.version} is too old (at least "
                    f"{'.'.join(map(str, MIN_TORCH))} is needed)")
        return ""


def version_tuple(text: str) -> tuple:
    """'2.13.0+cpu' -> (2, 13, 0); unknown parts are dropped."""
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def torch_state() -> TorchState:
    spec = importlib.util.find_spec("torch")
    if spec is None:
        return TorchState(False)
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        import torch  # a source build without metadata: ask it
        version = torch.__version__
    location = (spec.submodule_search_locations or [spec.origin or ""])[0]
    return TorchState(True, version, location, version_tuple(version) < MIN_TORCH)
