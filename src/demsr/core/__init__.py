"""Plain-Python engine of the plugin: no qgis import anywhere under core.

Torch is imported lazily (inside functions) so that everything that does not
need a neural network works without it.

Layers, imports pointing only downward: errors/monitor/memory/devices (shared by
all) <- raster <- nodata, terrain <- nets <- pipelines, training, evaluation.
"""
