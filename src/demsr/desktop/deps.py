"""What the installer offers besides PyTorch (whose pin and minimum are core/torch_policy.py's):
the optional extras and ONNX Runtime per platform."""
from __future__ import annotations

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
