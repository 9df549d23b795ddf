"""Super-resolution networks, their registry, checkpoint format and tiled inference.

Importing this package does not import torch; the architecture modules do.
"""
