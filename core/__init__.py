"""Plain-Python engine of the plugin: no qgis import anywhere under core.

Torch is imported lazily (inside functions) so that everything that does not
need a neural network works without it.
"""
