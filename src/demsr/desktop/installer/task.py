"""The installation as a QgsTask: pip runs in the background, the log streams to the dialog,
cancelling the task kills pip."""
from __future__ import annotations

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .pipinstall import InstallPlan, InstallResult, activate, run_plan


class InstallTask(QgsTask):
    line = pyqtSignal(str)      # one line of pip's output (queued to the main thread)
    done = pyqtSignal(object)   # InstallResult, emitted on the main thread

    def __init__(self, plan: InstallPlan):
        super().__init__("DEM Super-Resolution: installing PyTorch", QgsTask.Flag.CanCancel)
        self.plan = plan
        self.result: InstallResult | None = None

    def run(self) -> bool:
        try:
            self.result = run_plan(self.plan, log=self.line.emit, cancelled=self.isCanceled)
        except Exception as exc:  # report, never crash QGIS's task manager
            self.result = InstallResult(False, f"Installer error: {exc}")
        return self.result.ok

    def finished(self, ok: bool) -> None:
        if self.result is None:
            self.result = InstallResult(False, "Cancelled before pip started.")
        if self.result.ok and not self.result.restart_needed:
            activate(self.plan.target)
        self.done.emit(self.result)
