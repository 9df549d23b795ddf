"""Whether the process that left a file behind (a partial output, a lock) still runs.

Files that must outlive a crash carry their writer's pid; a later run removes them only
when that process is gone, or when the pid now belongs to a process started after the
file was written (pids are reused).
"""
from __future__ import annotations

import os
import sys
from typing import Optional


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (on any user's account)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: existence check only, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: ask the kernel instead.
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def start_time(pid: int) -> Optional[float]:
    """When the process started (epoch seconds), where the system says (Linux); else None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def owner_gone(pid: int, written_at: float) -> bool:
    """The process that wrote a file at `written_at` no longer runs."""
    if not pid_alive(pid):
        return True
    started = start_time(pid)
    return started is not None and started > written_at + 2  # pid reused by a newer process
