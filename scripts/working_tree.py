"""Makes the working tree importable as the `demsr` package, as QGIS imports the plugin.

Scripts, benchmarks and tests import the source checkout (not the installed
copy) through a `build/pkg/demsr` symlink to the repository root.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG_PARENT = ROOT / "build" / "pkg"


def use_working_tree() -> Path:
    """Put build/pkg (holding the demsr symlink) first on sys.path; returns the root."""
    PKG_PARENT.mkdir(parents=True, exist_ok=True)
    link = PKG_PARENT / "demsr"
    if not link.exists():
        try:
            link.symlink_to(ROOT, target_is_directory=True)
        except FileExistsError:  # made meanwhile by a parallel process
            pass
    if str(PKG_PARENT) not in sys.path:
        sys.path.insert(0, str(PKG_PARENT))
    import demsr  # noqa: F401 - puts the plugin's private dependency folder on sys.path
    return ROOT


if __name__ == "__main__":
    # `PYTHONPATH=$(python3 scripts/working_tree.py) python3 -m demsr …` runs the checkout.
    use_working_tree()
    print(PKG_PARENT)
