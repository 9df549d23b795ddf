"""Status & dependencies: what is installed, which device runs, which models ship."""
from qgis.PyQt.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QTextBrowser,
                                 QVBoxLayout)

from . import status


class StatusDialog(QDialog):
    def __init__(self, parent=None, on_install=None):
        super().__init__(parent)
        self.setWindowTitle("DEM Super-Resolution — Status & dependencies")
        self.resize(720, 520)
        self.browser = QTextBrowser(self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        self.install_button = buttons.addButton("Install / repair dependencies…",
                                                QDialogButtonBox.ButtonRole.ActionRole)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        copy.clicked.connect(lambda: QApplication.clipboard().setText(
            self.browser.toPlainText()))
        if on_install is not None:
            self.install_button.clicked.connect(on_install)
        else:
            self.install_button.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self):
        self.sections = status.collect()
        self.browser.setHtml(status.to_html(self.sections))
