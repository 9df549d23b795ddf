"""The user-facing jobs on files, each streaming or all-or-nothing: Super-resolve DEM on
one engine with its upsamplers, Void repair/SR (DS-HAT inputs and tiling), Terrain
derivatives."""
