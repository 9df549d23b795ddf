"""Real system conditions for reliability tests: a small file system, a lock held by
another process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest



@contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` at folder/small (needs root and mount rights: the test is
    skipped with the reason otherwise)."""
    mnt = folder / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                           str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@contextmanager
def lock_held_elsewhere(model: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the training lock of `model`; killed on exit (its lock is
    then stale)."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from demsr.core.training.lock import model_lock
        with model_lock({str(model)!r}):
            print("HELD", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        yield holder
    finally:
        holder.kill()
        holder.wait()
