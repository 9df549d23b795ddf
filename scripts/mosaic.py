"""Super-resolve a mosaic (tiles, or one VRT) with N worker processes, from a source checkout:

    python scripts/mosaic.py --workers N --scale 2 --out DIR tile1.tif tile2.tif …

Writes a GeoTIFF per input tile and DIR/mosaic.vrt (core/pipelines/mosaic.py); the same as
`python -m demsr.core.pipelines.mosaic …` with the folder holding `demsr` on PYTHONPATH.
"""
import sys

from working_tree import use_working_tree

use_working_tree()

from demsr.core.pipelines.mosaic import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
