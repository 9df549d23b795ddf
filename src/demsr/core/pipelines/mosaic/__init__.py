"""Super-resolving a mosaic (a list of tiles, or a VRT) on Dask distributed workers.

One output grid for the whole mosaic: the input tiles become one GDAL VRT, and the output
grid is that VRT's (as Super-resolve DEM would make it for the merged raster). Each input
tile's footprint on the output grid (the output cells whose centre lies in it) is a job:
a worker runs the Super-resolve engine on that window of the output grid, reading from a
crop of the VRT that reaches past the tile by the method's halo and by the void fill's
search distance. Every output cell thus sees the same input, neighbouring tiles' cells
included, as in one merged raster: tile borders are as seamless as the inside of a raster,
and nothing is computed twice.

- plan.py: the request, grids, jobs, the folder's manifest, finished tiles, the final VRT;
- tile.py: one job as a task on any worker (written atomically);
- cluster.py: the workers: the tasks on a Dask LocalCluster or a cluster by address,
  progress and cancel (the one module that imports Dask);
- run.py: the run: checks, plan, the tiles still to do handed to cluster.py, the VRT.

The command line is `python -m demsr mosaic` (demsr/cli/mosaic.py).
"""
from .plan import MosaicRequest, MosaicResult
from .run import run_mosaic

__all__ = ["MosaicRequest", "MosaicResult", "run_mosaic"]
