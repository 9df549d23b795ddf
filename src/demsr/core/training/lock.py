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
from ..processes import owner_gone


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
    it. Stale temporary files of dead writers (`MODEL.pt.PID.tmp`) are removed too."""
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
    _remove_dead_temporaries(model_path, note)
    try:
        yield path
    finally:
        if _owner(path) == os.getpid():
            os.remove(path)


def _remove_dead_temporaries(model_path: str, note) -> None:
    """checkpoint.save writes MODEL.pt.PID.tmp; a killed save leaves it behind."""
    folder, name = os.path.split(os.path.abspath(model_path))
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        middle = entry[len(name) + 1:-len(".tmp")] if (entry.startswith(name + ".")
                                                       and entry.endswith(".tmp")) else ""
        if middle.isdigit():
            full = os.path.join(folder, entry)
            try:
                if owner_gone(int(middle), os.path.getmtime(full)):
                    os.remove(full)
                    if note:
                        note(f"Removed '{entry}', a temporary model file left by an "
                             "interrupted run.")
            except OSError:
                pass
