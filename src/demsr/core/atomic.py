"""Files that appear whole or not at all: written under a hidden partial name beside the
destination, then moved onto it by one rename.

One naming scheme for every partial file, `.NAME.PID-RANDOM<suffix>` (partial_path): it
says which output and which process it is for, so raster/io.remove_stale_partials (run
before a run writes NAME) removes what a killed writer left and nothing of a live one.
Plain Python, cheap to import.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator, Union

PARTIAL_SUFFIX = ".partial.tif"  # a raster keeps a .tif ending for GDAL
TEXT_SUFFIX = ".partial"         # any other file, and staging folders
PARTIAL_SUFFIXES = (PARTIAL_SUFFIX, TEXT_SUFFIX)


def partial_path(path: str, suffix: str = PARTIAL_SUFFIX) -> str:
    """A hidden name beside `path` that says which output and which process it is for:
    `.NAME.PID-RANDOM.partial.tif` (or another suffix of PARTIAL_SUFFIXES)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


@contextmanager
def replacing(path: str) -> Iterator[str]:
    """A partial name to write `path` to: when the block ends without an error it replaces
    `path` (one rename); otherwise, or if that fails, it is removed and `path` is as before."""
    tmp = partial_path(path, TEXT_SUFFIX)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path: str, data: Union[str, bytes]) -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all."""
    binary = isinstance(data, bytes)
    with replacing(path) as tmp, open(tmp, "wb" if binary else "w",
                                      encoding=None if binary else "utf-8") as fh:
        fh.write(data)
