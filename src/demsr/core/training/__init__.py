"""Training super-resolution models on high-resolution DEMs (imports torch lazily)."""
