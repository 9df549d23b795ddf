"""Nodata: what a void is (find), filling it for streaming work (fill, inpaint), and
synthetic voids for training (synthetic)."""
