"""Whether two paths name the same file, so that no output ever overwrites an input or
another output of the same run.

Compared by the real file, not by the string: symlinks, `./`, `..`, hard links, and case
on case-insensitive file systems (Windows, macOS) all resolve to the same file.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional, Union

from .errors import DemSrError

Paths = Union[None, str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]]]


def _flatten(paths: Paths) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)] if os.fspath(paths) else []
    return [p for item in paths for p in _flatten(item)]


def _case_insensitive(folder: str) -> bool:
    """True when the file system holding `folder` ignores case (found by looking a
    component up under its swapped case)."""
    probe = folder
    while True:
        base = os.path.basename(probe)
        if base.swapcase() != base:
            alt = os.path.join(os.path.dirname(probe), base.swapcase())
            try:
                return os.path.exists(alt) and os.path.samefile(alt, probe)
            except OSError:
                return False
        parent = os.path.dirname(probe)
        if parent == probe:
            return os.path.normcase("A") == "a"
        probe = parent


def _key(path: str) -> str:
    """A comparable name for a path that may not exist yet (a new output)."""
    real = os.path.realpath(os.path.abspath(path))
    folder, name = os.path.split(real)
    if _case_insensitive(folder):
        return os.path.join(folder.lower(), name.lower())
    return os.path.normcase(real)


def same_file(a: str, b: str) -> bool:
    """a and b name the same file (existing or to be created)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _key(a) == _key(b)


def check_distinct_paths(inputs: Mapping[str, Paths],
                         outputs: Mapping[str, Optional[str]]) -> None:
    """Refuse, before any work, an output that is an input or another output of the run.

    `inputs` and `outputs` map parameter names to paths (an input may be a list of paths;
    None or "" = not set). The error names both parameters and the file.
    """
    ins = [(name, p) for name, paths in inputs.items() for p in _flatten(paths)]
    outs = [(name, p) for name, paths in outputs.items() for p in _flatten(paths)]
    for i, (oname, opath) in enumerate(outs):
        for iname, ipath in ins:
            if same_file(opath, ipath):
                raise DemSrError(
                    f"{oname} and {iname} are the same file ('{opath}'): writing {oname} would "
                    f"destroy the input. Choose another file for {oname}.")
        for oname2, opath2 in outs[i + 1:]:
            if same_file(opath, opath2):
                raise DemSrError(
                    f"{oname} and {oname2} are the same file ('{opath}'): one output would "
                    "overwrite the other. Give each output its own file.")
