"""Per-pixel uncertainty of super-resolved DEMs (one standard deviation, metres)."""
