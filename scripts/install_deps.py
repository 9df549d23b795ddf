"""`make deps`: the plugin's dependencies (torch) into its folder, as the desktop installer
does it (same constraints from the running QGIS, same choice of index, same checks)."""
import argparse
import sys
from pathlib import Path

# Run by the system Python before any venv: the Makefile puts src/ on PYTHONPATH.
ROOT = Path(__file__).resolve().parent.parent
from demsr.core.torch_policy import torch_requirement  # noqa: E402
from demsr.desktop.installer.pipinstall import InstallPlan, run_plan  # noqa: E402

REQUIREMENTS = ROOT / "scripts" / "requirements-plugin.txt"


def requirements(path=REQUIREMENTS) -> list:
    """The file's requirements; its torch line must be core/torch_policy.py's pin."""
    lines = (ln.split("#")[0].strip() for ln in open(path, encoding="utf-8"))
    found = [ln for ln in lines if ln]
    torch = [p for p in found if p.startswith("torch")]
    if torch != [torch_requirement()]:
        raise SystemExit(f"{path} pins {torch or 'no torch'}, core/torch_policy.py "
                         f"{torch_requirement()}: make them agree.")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--build", default="cpu",
                    help="cpu (PyTorch's CPU index), cu126 etc., or default (the package "
                         "index's own build: CUDA on Linux, several GB)")
    ap.add_argument("--wheels", default="", help="offline: a folder of wheels, no index")
    ap.add_argument("--torch", default="", help="another requirement for torch, e.g. "
                                                "torch==2.10.0")
    args = ap.parse_args()
    packages = requirements()
    if args.torch:
        packages = [p for p in packages if not p.startswith("torch")] + [args.torch]
    res = run_plan(InstallPlan(sys.executable, args.target, packages, build=args.build,
                               wheels_dir=args.wheels), log=lambda ln: print(ln, flush=True))
    print(("" if res.ok else "make deps failed: ") + res.message, file=sys.stderr)
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
