"""`python -m demsr`: the jobs users run outside QGIS (mosaic, train, status).

Each subcommand is a module with `add_arguments(parser)` and `run(args) -> int`; mosaic
and train import no qgis (status asks qgis.core for QGIS's version). The plugin's parent
folder (the QGIS profile's python/plugins, or a checkout's src/, which `make venv`
installs) must be importable; `demsr` then finds its dependency folder."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Optional

from . import mosaic, status, train

COMMANDS = {"mosaic": mosaic, "train": train, "status": status}


def log(t0: Optional[float] = None) -> Callable[[str], None]:
    """Timestamped lines on stdout, as every subcommand reports."""
    t0 = time.time() if t0 is None else t0
    return lambda m: print(f"[{time.time() - t0:7.1f}s] {m}", flush=True)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demsr", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.split("\n")[0],
                                            description=module.__doc__))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return COMMANDS[args.command].run(args)
