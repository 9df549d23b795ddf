"""Train DEM SR from a configuration JSON on N processes (DDP), from a source checkout:

    torchrun --nproc_per_node=N scripts/train_distributed.py --config run.json

The same as `torchrun --nproc_per_node=N -m demsr train --config run.json` with the folder
holding the `demsr` package on PYTHONPATH; this script puts the checkout's (build/pkg/demsr)
there first. torchrun itself needs a Python that imports torch.
"""
import sys

from working_tree import use_working_tree

use_working_tree()

from demsr.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
