"""One training per model file: a lock file beside OUTPUT_MODEL with the owner's pid.

Two trainings writing the same model would share one resume file and one temporary file,
and one of them would crash or overwrite the other. The second run is refused with a
message; a lock whose owner is gone (killed, power loss) is taken over, and saying so.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from ..errors import DemSrError, explain_os_error
from ..nets.onnx_model import onnx_path
from ..processes import owner_gone
from ..raster.write import remove_stale_partials


def lock_path(model_path: str) -> str:
    return os.path.abspath(model_path) + ".lock"


def _owner(path: str) -> Optional[int]:
    try:
        with open(path) as fh:
            text = fh.read().split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


@contextmanager
def model_lock(model_path: str, note: Optional[Callable[[str], None]] = None) -> Iterator[str]:
    """Hold the lock of `model_path` for the duration; DemSrError if another live run holds
    it. Partial files of dead writers of the model, its resume file and its ONNX copy
    (core/atomic.py's names) are removed too."""
    path = lock_path(model_path)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _owner(path)
            try:
                written = os.path.getmtime(path)
            except OSError:
                continue  # released meanwhile: try again
            if pid is None and time.time() - written < 5:
                time.sleep(0.5)  # being written by its owner right now
                continue
            if pid is not None and not owner_gone(pid, written):
                raise DemSrError(
                    f"Another training (process {pid}) is writing '{model_path}'. Wait until it "
                    "finishes or cancel it, or choose another OUTPUT_MODEL. (If no training "
                    f"runs, delete '{path}'.)") from None
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            if note:
                note(f"Removed the lock of '{os.path.basename(model_path)}' left by an "
                     f"interrupted training (process {pid}, no longer running).")
            continue
        except OSError as exc:
            raise explain_os_error(exc, path) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        break
    else:
        raise DemSrError(f"Cannot take the lock '{path}' of '{model_path}'; another run keeps "
                         "changing it. Try again, or choose another OUTPUT_MODEL.")
    # what a killed save left: the resume file's partials carry the model's name too
    for written in (model_path, onnx_path(model_path)):
        remove_stale_partials(written, note)
    try:
        yield path
    finally:
        if _owner(path) == os.getpid():
            os.remove(path)
