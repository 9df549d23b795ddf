"""Installs PyTorch into the plugin's private folder with the Python QGIS runs."""
