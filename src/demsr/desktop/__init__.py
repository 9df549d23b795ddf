"""QGIS desktop only: menu, dialogs, dependency installer, result styles (never loaded
by qgis_process)."""
