"""ONNX copies of models, so they run with ONNX Runtime alone (no PyTorch).

    python scripts/export_onnx.py [MODEL.pt ...]
    python scripts/export_onnx.py --deepness OUT.onnx --resolution-cm 3000 MODEL.pt

Without arguments: every bundled model (resources/models/*.pt) gets NAME.onnx beside it
(`make train-default` and `make train-dshat` run this). Each export is built from what the
checkpoint holds (architecture, hyper-parameters, inputs and channel counts), carries the
checkpoint's header and integrity hashes (core/nets/onnx_model.py) and is refused when its
outputs differ from PyTorch's by more than 1e-3 m on a test surface. Needs PyTorch and ONNX
Runtime (`make deps` installs both).

--deepness writes a model for the Deepness QGIS plugin instead (integer-scale super-resolution
models only; its limits: docs/deepness.md).
"""
import argparse
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import demsr  # noqa: E402,F401 - puts the plugin's private dependency folder on sys.path
from demsr.core.nets import bundled, checkpoint, onnx_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=".pt files (default: the bundled models)")
    ap.add_argument("--deepness", metavar="OUT", help="write a Deepness model to OUT")
    ap.add_argument("--resolution-cm", type=float, default=3000.0,
                    help="Deepness: the DEM resolution it processes at, cm/px (default 3000)")
    ap.add_argument("--tile", type=int, default=onnx_model.DEEPNESS_TILE,
                    help="Deepness: input tile side in pixels")
    args = ap.parse_args()
    models = args.models or sorted(glob.glob(os.path.join(bundled.MODELS_DIR, "*.pt")))
    if args.deepness:
        if len(models) != 1:
            ap.error("--deepness takes exactly one model")
        meta = onnx_model.export_deepness(checkpoint.load(models[0], prefer_onnx=False),
                                          args.deepness, args.resolution_cm, args.tile)
        print(f"{args.deepness}: {meta}")
        return
    for pt in models:
        path, worst = onnx_model.export_checkpoint(pt)
        name = os.path.relpath(os.path.realpath(path), ROOT)
        print(f"{name}: {os.path.getsize(path) / 1e3:.0f} kB, largest difference to PyTorch "
              f"on the test surface {worst:.2g} m")


if __name__ == "__main__":
    main()
