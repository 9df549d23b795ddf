"""Install / repair dependencies: build choice, offline wheels, live pip log, cancel."""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                                 QLabel, QPlainTextEdit, QVBoxLayout)

from ... import dependency_dir
import sys

from ...core.torch_policy import torch_requirement, torch_state
from ..deps import EXTRAS, onnxruntime_download, onnxruntime_requirement
from .cuda import CUDA_BUILDS, detect_nvidia, suggest_build
from .interpreter import find_python
from .pipinstall import InstallPlan
from .task import InstallTask


ONNX_CHOICE = "onnxruntime"


class InstallerDialog(QDialog):
    installed = pyqtSignal(object)  # InstallResult of a successful install, usable now

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("DEM Super-Resolution — Install / repair dependencies")
        self.resize(760, 520)
        self.task = None
        self.python, self.tried = find_python()
        suggested, reason = suggest_build(detect_nvidia())
        self.build = QComboBox(self)
        # First choice for running models: ONNX Runtime (CPU). PyTorch trains and uses GPUs.
        # PyTorch's sizes are not guessed here: the installer states the real download size
        # of the wheels it found before pip downloads them (source.choose).
        self.build.addItem(f"ONNX Runtime — runs the models on the CPU, no training "
                           f"({onnxruntime_download(sys.platform)} download)", ONNX_CHOICE)
        self.build.addItem("PyTorch CPU — runs and trains models (from PyTorch's CPU index)",
                           "cpu")
        for _, name in CUDA_BUILDS:
            self.build.addItem(f"PyTorch NVIDIA CUDA {name[2:4]}.{name[4:]} — GPU runs and "
                               "training (needs a matching driver)", name)
        self.build.addItem("PyTorch, the package index's default build (on Linux: CUDA, "
                           "several GB)", "default")
        self.build.setCurrentIndex(max(0, self.build.findData(
            ONNX_CHOICE if suggested == "cpu" else suggested)))
        self.wheels = QgsFileWidget(self)
        self.wheels.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.wheels.setToolTip("Offline machines: a folder with the wheels of onnxruntime "
                               "or torch and their dependencies (pip download onnxruntime "
                               "--only-binary=:all: -d FOLDER)")
        form = QFormLayout()
        form.addRow("QGIS's Python", QLabel(self.python or "not found (tried: "
                                            + ", ".join(self.tried) + ")"))
        form.addRow("Install into", QLabel(dependency_dir()))
        self.installed_label = QLabel(self)
        self.installed_label.setObjectName("demsr_installed_now")
        form.addRow("Installed now", self.installed_label)
        self.show_state()
        form.addRow("Install", self.build)
        form.addRow("", QLabel(f"Suggested PyTorch build: {suggested} — {reason}"))
        form.addRow("Folder of wheels (offline, optional)", self.wheels)
        self.extras = QCheckBox("Also the extras: Dask distributed, for mosaics outside QGIS "
                                "(python -m demsr mosaic; not needed in the toolbox)", self)
        form.addRow("Extras", self.extras)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setObjectName("demsr_install_log")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        self.install_button = self.buttons.addButton("Install",
                                                     QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel install",
                                                    QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setEnabled(False)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.log)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def show_state(self) -> None:
        from ...core.backends import ONNX, installed_version

        state, ort = torch_state(), installed_version(ONNX)
        self.installed_label.setText(
            (f"PyTorch {state.version}" if state.installed else "PyTorch not installed")
            + "; " + (f"ONNX Runtime {ort}" if ort else "ONNX Runtime not installed"))

    def plan(self) -> InstallPlan:
        choice = self.build.currentData()
        if choice == ONNX_CHOICE:
            return InstallPlan(python=self.python or "", target=dependency_dir(),
                               packages=[onnxruntime_requirement(sys.platform)],
                               verify_module="onnxruntime",
                               wheels_dir=self.wheels.filePath().strip())
        return InstallPlan(python=self.python or "", target=dependency_dir(),
                           packages=[torch_requirement()]
                           + (EXTRAS if self.extras.isChecked() else []),
                           build=choice,
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
        self.show_state()
        if result.ok and not result.restart_needed:
            self.installed.emit(result)
