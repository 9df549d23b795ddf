"""Everything initGui adds to the QGIS window; created only when iface exists."""
from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QPushButton

from ..core.torch_policy import torch_state
from .menu import MENU, DemSrMenu


def onnxruntime_version() -> str:
    from ..core.backends import ONNX, installed_version

    return installed_version(ONNX)


class DesktopUi:
    def __init__(self, iface):
        self.iface = iface
        self.menu = DemSrMenu(iface, self.open_installer, self.open_status)
        self.status_dialog = None
        self.installer_dialog = None
        self.torch_message = None

    def init(self) -> None:
        self.menu.build()
        # After the window is up, so the message lands in the visible message bar.
        QTimer.singleShot(0, self.warn_if_torch_missing)
        QTimer.singleShot(0, self.install_examples)

    def install_examples(self) -> None:
        """The example model in the Processing Toolbox under Models."""
        from .examples import install_example_models

        try:
            install_example_models()
        except Exception as exc:  # never block QGIS's start for an example
            QgsMessageLog.logMessage(f"Example models not installed: {exc}", MENU,
                                     Qgis.MessageLevel.Warning)

    def warn_if_torch_missing(self) -> bool:
        """Once per session, when neither ONNX Runtime nor PyTorch can run the models: a
        message bar item with an Install… button (the installer proposes ONNX Runtime)."""
        state = torch_state()
        if state.usable or onnxruntime_version() or self.torch_message is not None:
            return False
        bar = self.iface.messageBar()
        item = bar.createMessage(MENU, state.problem() + " and neither is ONNX Runtime: the "
                                 "learned models need one of them (ONNX Runtime runs them, "
                                 "PyTorch also trains; classical methods work without).")
        button = QPushButton("Install ONNX Runtime or PyTorch…", item)
        button.setObjectName("demsr_install_torch")
        button.clicked.connect(self.open_installer)
        item.layout().addWidget(button)
        self.torch_message = bar.pushWidget(item, Qgis.MessageLevel.Warning)
        return True

    def open_status(self):
        from .status_dialog import StatusDialog

        self.status_dialog = StatusDialog(self.iface.mainWindow(), on_install=self.open_installer)
        self.status_dialog.show()
        return self.status_dialog

    def open_installer(self):
        from .installer.dialog import InstallerDialog

        if self.installer_dialog is None:
            self.installer_dialog = InstallerDialog(self.iface.mainWindow())
            self.installer_dialog.installed.connect(self.torch_installed)
        self.installer_dialog.show()
        self.installer_dialog.raise_()
        return self.installer_dialog

    def torch_installed(self, result) -> None:
        """A successful install is usable at once: the warning goes, the status shows it."""
        if self.torch_message is not None:
            try:
                self.iface.messageBar().popWidget(self.torch_message)
            except RuntimeError:  # the user closed it already
                pass
            self.torch_message = None
        self.iface.messageBar().pushSuccess(
            MENU, f"PyTorch ready ({result.version}): the learned models run now, "
            "no restart needed.")
        if self.status_dialog is not None:
            self.status_dialog.refresh()

    def unload(self) -> None:
        self.menu.unload()
        for dialog in (self.status_dialog, self.installer_dialog):
            if dialog is not None:
                dialog.close()
                dialog.deleteLater()
