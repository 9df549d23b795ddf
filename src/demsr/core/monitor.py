"""Progress, cancellation and logging callbacks passed to long-running core work."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import Cancelled


def _noop(*_args) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class Monitor:
    """Bundle of callbacks; algorithms connect them to QgsProcessingFeedback."""

    progress: Callable[[float], None] = field(default=_noop)  # fraction in [0, 1]
    cancelled: Callable[[], bool] = field(default=_never)
    info: Callable[[str], None] = field(default=_noop)
    warning: Callable[[str], None] = field(default=_noop)

    def check(self) -> None:
        """Raise Cancelled if the user asked to stop."""
        if self.cancelled():
            raise Cancelled("cancelled by the user")

    def sub(self, start: float, stop: float) -> "Monitor":
        """A monitor whose progress 0..1 maps onto start..stop of this one."""
        span = stop - start
        return Monitor(
            progress=lambda f: self.progress(start + span * min(max(f, 0.0), 1.0)),
            cancelled=self.cancelled,
            info=self.info,
            warning=self.warning,
        )
