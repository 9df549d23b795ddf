"""Networks: the architectures (fast, gisr, dshat), their registry by name, local
statistics layers, the checkpoint format and the bundled models' paths.

Importing this package does not import torch; the architecture modules do.
"""
