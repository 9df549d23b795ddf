"""Builds dist/demsr-<version>.zip, the file QGIS's "Install from ZIP" and plugins.qgis.org take.

One top folder `demsr/` (the import name, never a version suffix), only the files the plugin
runs with, no caches. The version comes from metadata.txt so the two never disagree.
Usage: python3 scripts/package.py [--out DIR]
"""
from __future__ import annotations

import argparse
import configparser
import fnmatch
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "demsr"
PACKAGE = Path("src") / PLUGIN  # the plugin folder is the package, plus these files beside it
BESIDE = ["LICENSE", "README.md"]
EXCLUDE = ["__pycache__", "*.pyc", "*.pyo", ".git*", "__MACOSX", ".DS_Store", "*.aux.xml",
           "*.pt.resume", "*~"]


def version(root: Path = ROOT) -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(root / PACKAGE / "metadata.txt", encoding="utf-8")
    return cfg["general"]["version"]


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDE)


def plugin_files(root: Path = ROOT):
    """(path on disk, path in the ZIP) for every file shipped, sorted for reproducible ZIPs:
    the package folder (what the plugin runs with; tests, scripts, benchmarks and build
    outputs live outside it) and the licence and user's guide."""
    for name in BESIDE:
        yield root / name, f"{PLUGIN}/{name}"
    package = root / PACKAGE
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d))
        for fname in sorted(filenames):
            if not _excluded(fname):
                full = Path(dirpath) / fname
                yield full, f"{PLUGIN}/{full.relative_to(package).as_posix()}"


def build(out_dir: Path, root: Path = ROOT) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{version(root)}.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for src, arc in plugin_files(root):
            zf.write(src, arc)
    os.replace(tmp, target)  # never leave a half-written ZIP under the final name
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
