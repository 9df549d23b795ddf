"""Raster ▸ DEM Super-Resolution menu and the toolbar button."""
from __future__ import annotations

import os

from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QMenu, QToolButton

MENU = "DEM Super-Resolution"
ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.png")
# (algorithm id, menu text) in the order a user meets them.
ALGORITHMS = [
    ("demsr:superresolve", "Super-resolve DEM…"),
    ("demsr:voidrepair", "Void repair/SR (DS-HAT)…"),
    ("demsr:derivatives", "Terrain derivatives…"),
    ("demsr:evaluate", "Evaluate DEM…"),
    ("demsr:train", "Train DEM SR…"),
]


class DemSrMenu:
    def __init__(self, iface, on_install, on_status):
        self.iface = iface
        self.actions: list[QAction] = []
        self.on_install = on_install
        self.on_status = on_status
        self.toolbar_action = None
        self.button = None
        self.dialog = None

    def _action(self, text, slot, icon=None) -> QAction:
        action = QAction(QIcon(icon) if icon else QIcon(), text, self.iface.mainWindow())
        action.setObjectName("demsr_" + "".join(c for c in text.lower() if c.isalnum()))
        action.triggered.connect(slot)
        self.iface.addPluginToRasterMenu(MENU, action)
        self.actions.append(action)
        return action

    def build(self) -> None:
        for alg_id, text in ALGORITHMS:
            self._action(text, lambda _=False, a=alg_id: self.open_dialog(a), ICON)
        self._action("Install / repair dependencies…", lambda _=False: self.on_install())
        self._action("Status && dependencies…", lambda _=False: self.on_status())
        # One toolbar button: click = Super-resolve DEM, arrow = the whole menu.
        popup = QMenu(self.iface.mainWindow())
        popup.addActions(self.actions)
        self.button = QToolButton(self.iface.mainWindow())
        self.button.setObjectName("demsr_toolbutton")
        self.button.setDefaultAction(self.actions[0])
        self.button.setMenu(popup)
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.button.setToolTip(MENU)
        self.toolbar_action = self.iface.addToolBarWidget(self.button)

    def open_dialog(self, alg_id: str):
        """The algorithm's own Processing dialog, non-modal as the toolbox opens it."""
        import processing

        dialog = processing.createAlgorithmDialog(alg_id, {})
        if dialog is None:  # the provider is not loaded
            self.iface.messageBar().pushWarning(MENU, f"Algorithm {alg_id} is not available.")
            return None
        dialog.show()
        self.dialog = dialog  # keep it alive while it is shown
        return dialog

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
        if self.toolbar_action is not None:
            self.iface.removeToolBarIcon(self.toolbar_action)
        if self.button is not None:
            self.button.deleteLater()
        self.actions = []
