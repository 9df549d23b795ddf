"""Per-pixel uncertainty (one standard deviation, metres) of super-resolved DEMs
(estimate.py) and of Void repair's fills (voids.py)."""
