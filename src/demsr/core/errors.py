"""Exceptions that carry a message meant for the user.

Algorithms turn DemSrError into QgsProcessingException unchanged, so each
message says what is wrong and what to do about it.
"""
from .torch_policy import torch_requirement, too_old_text


class DemSrError(Exception):
    """A user-facing problem with the input, parameters or environment."""


class Cancelled(Exception):
    """The user cancelled; partial outputs have been removed."""


class _Missing(DemSrError):
    """A runtime that cannot be imported: MESSAGE, plus the import error when known."""

    MESSAGE = ""

    def __init__(self, detail: str = ""):
        super().__init__(self.MESSAGE + (f" (import error: {detail})" if detail else ""))


class TorchMissing(_Missing):
    """PyTorch is needed but cannot be imported."""

    MESSAGE = (
        "This algorithm needs PyTorch, which is not installed for the Python that QGIS "
        "uses. In QGIS: Raster ▸ DEM Super-Resolution ▸ Install / repair dependencies…; "
        "from the plugin's source folder: `make deps`; or install it with "
        "`python3 -m pip install --target <QGIS profile>/python/demsr-deps "
        f"{torch_requirement()}` (use the same python3 as QGIS and do not upgrade numpy). "
        "The in-QGIS installer needs no restart; after installing by hand, restart QGIS."
    )


class TorchTooOld(DemSrError):
    """PyTorch imports but is older than core/torch_policy.py's minimum."""

    def __init__(self, version: str):
        super().__init__(
            f"{too_old_text(version)} for this plugin. Install {torch_requirement()}: in "
            "QGIS, Raster ▸ DEM Super-Resolution ▸ Install / repair dependencies…; from the "
            "plugin's source folder, `make deps`. Then restart QGIS.")


class RuntimeMissing(_Missing):
    """Neither runtime that runs the models (ONNX Runtime, PyTorch) can be imported."""

    MESSAGE = (
        "Running a model needs ONNX Runtime or PyTorch, and neither is installed for the "
        "Python that QGIS uses. ONNX Runtime (about 12–28 MB to download) is enough to run "
        "the models on the CPU; PyTorch (about 200 MB to download, 880 MB installed) is "
        "needed to train models and to run them on a GPU. In QGIS: Raster ▸ DEM "
        "Super-Resolution ▸ Install / repair dependencies…; from the plugin's source "
        "folder: `make deps`; or `python3 -m pip install --target <QGIS profile>/python/"
        f"demsr-deps onnxruntime` (or {torch_requirement()}; use the same python3 as QGIS "
        "and do not upgrade numpy), then restart QGIS."
    )


_ERRNO_ADVICE = {
    "ENOSPC": "the disk is full. Free some space or write to another disk",
    "EDQUOT": "your disk quota is used up. Free some space or write to another disk",
    "EFBIG": "the file is larger than this file system or account allows (FAT32 holds at "
             "most 4 GB per file). Write to another disk (NTFS, ext4, APFS) or make the "
             "output smaller",
    "EROFS": "the file system is read-only. Write to another folder",
    "EACCES": "permission denied. Write to a folder you own, or close programs using the file",
    "EPERM": "the operation is not permitted there. Write to a folder you own",
    "ENOTDIR": "a part of the path is a file, not a folder. Check the path",
    "EISDIR": "the path is a folder. Give a file name",
    "ENAMETOOLONG": "the path is too long. Use a shorter folder or file name",
    "ENOENT": "a folder on the path does not exist. Create it or choose another",
    "EINVAL": "this file system cannot hold such a file. Write to an ordinary folder",
    "EIO": "the disk reported an input/output error. Check the disk, or write to another one",
    "EBUSY": "the file is in use. Close programs using it, or write to another file",
}


def explain_os_error(exc: OSError, path: str = "") -> DemSrError:
    """An OS error as a sentence that says what to do (no traceback)."""
    import errno as _errno

    code = _errno.errorcode.get(exc.errno or 0, "")
    where = path or exc.filename or ""
    advice = _ERRNO_ADVICE.get(code)
    what = f"'{where}'" if where else "a file (the system did not say which)"
    if advice is None:
        return DemSrError(f"The system refused an operation on {what} ({exc.strerror or exc}). "
                          "Check the path and the disk, then run again.")
    return DemSrError(f"Cannot write or read {what}: {advice}.")


def out_of_memory(detail: str = "") -> DemSrError:
    """The message for a failed allocation on the CPU (RAM)."""
    return DemSrError(
        "Out of memory" + (f" ({detail})" if detail else "") + ": this run needs more RAM "
        "than is free. Close other programs, lower TILE_SIZE or BATCH_SIZE, or split the DEM "
        "into parts (Raster ▸ Extraction ▸ Clip) and run each.")


def as_user_error(exc: BaseException) -> "DemSrError | None":
    """The user-facing form of an unexpected OS or memory error (None: a real bug, whose
    traceback is worth seeing)."""
    if isinstance(exc, DemSrError):
        return exc
    if isinstance(exc, MemoryError):
        return out_of_memory(type(exc).__name__)
    if isinstance(exc, RuntimeError):
        text = str(exc)
        if "DefaultCPUAllocator" in text or "can't allocate memory" in text:
            return out_of_memory(text.splitlines()[0][:160])
        if "out of memory" in text.lower():  # a GPU that even one tile does not fit
            return DemSrError(
                "The GPU ran out of memory even with one tile per batch: lower TILE_SIZE, "
                "close other programs using the GPU, or run with DEVICE=cpu.")
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        return explain_os_error(exc)
    return None
