"""Install / repair dependencies: build choice, offline wheels, live pip log, cancel."""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                                 QPlainTextEdit, QVBoxLayout)

from ... import dependency_dir
import sys

from ..deps import TORCH_PIN, onnxruntime_download, onnxruntime_requirement, torch_state
from .cuda import CUDA_BUILDS, detect_nvidia, suggest_build
from .interpreter import find_python
from .pipinstall import InstallPlan
from .task import InstallTask


ONNX_CHOICE = "onnxruntime"


class InstallerDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("DEM Super-Resolution — Install / repair dependencies")
        self.resize(760, 520)
        self.task = None
        self.python, self.tried = find_python()
        suggested, reason = suggest_build(detect_nvidia())
        state = torch_state()
        self.build = QComboBox(self)
        # First choice for running models: ONNX Runtime (CPU). PyTorch trains and uses GPUs.
        self.build.addItem(f"ONNX Runtime — runs the models on the CPU, no training "
                           f"({onnxruntime_download(sys.platform)} download)", ONNX_CHOICE)
        self.build.addItem("PyTorch CPU — runs and trains models (~200 MB download, 880 MB "
                           "installed)", "cpu")
        for _, name in CUDA_BUILDS:
            self.build.addItem(f"PyTorch NVIDIA CUDA {name[2:4]}.{name[4:]} — GPU runs and "
                               "training (needs a matching driver, ~2.5 GB)", name)
        self.build.setCurrentIndex(max(0, self.build.findData(
            ONNX_CHOICE if suggested == "cpu" else suggested)))
        self.wheels = QgsFileWidget(self)
        self.wheels.setStorageMode(QgsFileWidget.GetDirectory)
        self.wheels.setToolTip("Offline machines: a folder with the wheels of onnxruntime "
                               "or torch and their dependencies (pip download onnxruntime "
                               "--only-binary=:all: -d FOLDER)")
        form = QFormLayout()
        form.addRow("QGIS's Python", QLabel(self.python or "not found (tried: "
                                            + ", ".join(self.tried) + ")"))
        form.addRow("Install into", QLabel(dependency_dir()))
        from ...core.backends import ONNX, installed_version

        ort = installed_version(ONNX)
        form.addRow("Installed now", QLabel(
            (f"PyTorch {state.version}" if state.installed else "PyTorch not installed")
            + "; " + (f"ONNX Runtime {ort}" if ort else "ONNX Runtime not installed")))
        form.addRow("Install", self.build)
        form.addRow("", QLabel(f"Suggested PyTorch build: {suggested} — {reason}"))
        form.addRow("Folder of wheels (offline, optional)", self.wheels)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setObjectName("demsr_install_log")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close, parent=self)
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel install", QDialogButtonBox.ActionRole)
        self.cancel_button.setEnabled(False)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.log)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def plan(self) -> InstallPlan:
        choice = self.build.currentData()
        if choice == ONNX_CHOICE:
            return InstallPlan(python=self.python or "", target=dependency_dir(),
                               packages=[onnxruntime_requirement(sys.platform)],
                               verify_module="onnxruntime",
                               wheels_dir=self.wheels.filePath().strip())
        return InstallPlan(python=self.python or "", target=dependency_dir(),
                           packages=[f"torch=={TORCH_PIN}"], build=choice,
                           wheels_dir=self.wheels.filePath().strip())

    def start(self):
        self.log.clear()
        self.message.setText("Installing… (you can close this window; the task keeps running)")
        self.task = InstallTask(self.plan())
        self.task.line.connect(self.log.appendPlainText)
        self.task.done.connect(self.finished)
        self.install_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self):
        if self.task is not None:
            self.task.cancel()

    def finished(self, result):
        self.message.setText(("✔ " if result.ok else "✘ ") + result.message)
        self.install_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.task = None
