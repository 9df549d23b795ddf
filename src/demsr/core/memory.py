"""How much memory the machine can give, so that work held in memory fails with a clear
message before it starts instead of taking QGIS down with it."""
from __future__ import annotations

from typing import Optional


def available_bytes() -> Optional[int]:
    """Memory available to a new allocation without swapping (None when unknown)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or failing: try the kernel's figure
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB"
