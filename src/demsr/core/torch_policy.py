"""Which PyTorch the plugin installs and which it accepts: the one place that the installer,
`make deps`, the error messages and every run (import_torch: QGIS, qgis_process, the
command line) read. Plain Python; answers without importing torch (QGIS start-up stays
fast)."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass

MIN_TORCH = (2, 0)
# The CPU build the installer proposes; the one `make deps` installs (its requirements file,
# scripts/requirements-plugin.txt, is checked against it).
TORCH_PIN = "2.13.0"


def torch_requirement() -> str:
    """The pip requirement of the PyTorch the plugin installs."""
    return f"torch=={TORCH_PIN}"


def version_tuple(text: str) -> tuple:
    """'2.13.0+cpu' -> (2, 13, 0); unknown parts are dropped."""
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def too_old(version: str) -> bool:
    return version_tuple(version) < MIN_TORCH


def too_old_text(version: str) -> str:
    return (f"PyTorch {version} is too old (at least {'.'.join(map(str, MIN_TORCH))} "
            "is needed)")


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
            return too_old_text(self.version)
        return ""


def torch_state() -> TorchState:
    """Whether PyTorch is there and new enough, from its metadata (torch is not imported)."""
    spec = importlib.util.find_spec("torch")
    if spec is None:
        return TorchState(False)
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        import torch  # a source build without metadata: ask it
        version = torch.__version__
    location = (spec.submodule_search_locations or [spec.origin or ""])[0]
    return TorchState(True, version, location, too_old(version))
