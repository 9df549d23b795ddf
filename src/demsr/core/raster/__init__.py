"""Rasters on disk and on grids: grid maths (grid), reading/atomic writing (io), GDAL
resampling and warping (warp), tile plans and windows (tiles). Imports nothing else of core
but errors."""
