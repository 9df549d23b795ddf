"""Outputs that appear together or not at all, and scratch folders that outlive no run.

`staged()` hands out hidden names beside each destination (the partial names of
raster/write.py, so the next run of the same output removes what a killed run left); only
when every output is written does commit() move them into place, one rename each. A
picture folder is swapped in whole, and the folder it replaces is emptied only of the
files a report writes: anything else in it stops the run before work (check_own_folder).

`scratch_folder()` is a folder in the system temp folder named after this process, so
that a later run removes one a killed run left behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

from .errors import DemSrError, explain_os_error
from .paths import same_file
from .processes import owner_gone
from .atomic import PARTIAL_SUFFIX, TEXT_SUFFIX, partial_path


class Staged:
    """Files and folders written under hidden names, moved into place by commit()."""

    def __init__(self) -> None:
        self._files: list[tuple[str, str]] = []
        self._folders: list[tuple[str, str, frozenset]] = []

    def file(self, dest: str, raster: bool = False) -> str:
        """The hidden name to write `dest` to (a GeoTIFF keeps a .tif ending for GDAL)."""
        tmp = partial_path(dest, PARTIAL_SUFFIX if raster else TEXT_SUFFIX)
        self._files.append((dest, tmp))
        return tmp

    def write_text(self, dest: str, text: str) -> None:
        tmp = self.file(dest)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise explain_os_error(exc, dest) from None

    def folder(self, dest: str, own: Iterable[str]) -> str:
        """A new hidden folder that replaces `dest` on commit; `own` names the files a run
        writes there, the only ones commit() removes from the folder it replaces."""
        tmp = partial_path(dest, TEXT_SUFFIX)
        try:
            os.mkdir(tmp)
        except OSError as exc:
            raise explain_os_error(exc, dest) from None
        self._folders.append((dest, tmp, frozenset(own)))
        return tmp

    def commit(self) -> None:
        try:
            for dest, tmp in self._files:
                os.replace(tmp, dest)
                if dest.lower().endswith((".tif", ".tiff")) and os.path.exists(dest + ".aux.xml"):
                    os.remove(dest + ".aux.xml")  # old statistics of the previous file
            for dest, tmp, own in self._folders:
                _swap_folder(tmp, dest, own)
        except OSError as exc:
            raise explain_os_error(exc, exc.filename or "") from None
        self._files, self._folders = [], []

    def discard(self) -> None:
        for _, tmp in self._files:
            if os.path.exists(tmp):
                os.remove(tmp)
        for _, tmp, _own in self._folders:
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._folders = [], []


@contextmanager
def staged() -> Iterator[Staged]:
    """Stage outputs; whatever is not committed when the block ends is removed."""
    stage = Staged()
    try:
        yield stage
    finally:
        stage.discard()


def _swap_folder(tmp: str, dest: str, own: frozenset) -> None:
    if not os.path.lexists(dest):
        os.rename(tmp, dest)
        return
    old = partial_path(dest, TEXT_SUFFIX)
    os.rename(dest, old)
    os.rename(tmp, dest)
    for name in os.listdir(old):  # checked before work: only files a report writes
        if name in own and os.path.isfile(os.path.join(old, name)):
            os.remove(os.path.join(old, name))
    try:
        os.rmdir(old)
    except OSError:  # something appeared there during the run: keep it, under its new name
        os.rename(old, dest.rstrip(os.sep) + f".previous-{uuid.uuid4().hex[:6]}")


def check_own_folder(folder: str, own: Iterable[str], inputs: Iterable[Optional[str]],
                     what: str) -> None:
    """Before work: the folder a run will replace holds only files such a run writes, and
    no input; otherwise refuse, naming what is there."""
    if not os.path.lexists(folder):
        return
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise DemSrError(f"'{folder}' exists and is not a folder of {what}; the run would have "
                         "to replace it. Move it away or choose another output name.")
    names = sorted(os.listdir(folder))
    for path in inputs:
        if path and any(same_file(os.path.join(folder, n), path) for n in names):
            raise DemSrError(f"The folder '{folder}', which this run replaces with {what}, holds "
                             f"the input '{path}'. Move the input elsewhere or choose another "
                             "output name; nothing was changed.")
    own = set(own)
    foreign = [n for n in names if n not in own
               or not os.path.isfile(os.path.join(folder, n))
               or os.path.islink(os.path.join(folder, n))]
    if foreign:
        shown = ", ".join(f"'{n}'" for n in foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise DemSrError(f"The folder '{folder}', which this run replaces with {what}, holds "
                         f"files it did not write ({shown}). Move them away or choose another "
                         "output name; nothing was changed.")


@contextmanager
def scratch_folder(prefix: str) -> Iterator[str]:
    """A new folder in the system temp folder, `PREFIX<pid>-<random>`, removed on exit;
    folders of the same prefix whose process is gone (a killed run) are removed first."""
    base = tempfile.gettempdir()
    remove_stale_scratch(prefix, base)
    path = os.path.join(base, f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_scratch(prefix: str, base: Optional[str] = None) -> list[str]:
    """Remove `PREFIX<pid>-<random>` folders in `base` whose process is gone."""
    base = base or tempfile.gettempdir()
    removed = []
    try:
        entries = os.listdir(base)
    except OSError:
        return removed
    for entry in entries:
        pid, dash, _ = entry[len(prefix):].partition("-")
        if not (entry.startswith(prefix) and dash and pid.isdigit()):
            continue
        full = os.path.join(base, entry)
        try:
            if os.path.isdir(full) and not os.path.islink(full) and \
                    owner_gone(int(pid), os.path.getmtime(full)):
                shutil.rmtree(full)
                removed.append(entry)
        except OSError:
            continue
    return removed
