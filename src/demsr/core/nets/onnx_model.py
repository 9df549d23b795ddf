"""ONNX copies of checkpoints (NAME.onnx beside NAME.pt), so models run without PyTorch.

An .onnx file written here carries, in the model's metadata_props, the checkpoint's header
(architecture, scale, hyper-parameters, normalisation, provenance with the recorded factors
and finish), the network's halo, its input names and the SHA-256 of the weights it was made
from, plus SHA-256 hashes of that header and of the rest of the file (graph and weights).
read() checks all of it before ONNX Runtime sees the file, with plain Python: the hashes (a
damaged or edited file is refused), the architecture's limits (registry.check, torch-free),
the recorded factors (coverage.of_checkpoint) and that the halo and inputs are sane.

export() needs torch (torch.onnx, the TorchScript exporter: no onnx or onnxscript package),
builds the export from whatever the checkpoint holds (architecture, hyper-parameters,
the forward's inputs and their channel counts) and refuses to write a file whose outputs
differ from PyTorch's by more than EXPORT_TOLERANCE on a test surface.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..atomic import write_atomic
from ..errors import DemSrError
from . import coverage, registry

FORMAT = "demsr-onnx"
VERSION = 1
HEADER_KEY, INTEGRITY_KEY = "demsr", "demsr_integrity"
HASH = "sha256"
OPSET = 17
MAX_BYTES = 512 * 2**20     # the bundled models are 0.1–0.7 MB
MAX_HALO = 4096
EXPORT_TOLERANCE = 1e-3     # metres, on a test surface of a few hundred metres of relief
_METADATA_FIELD = 14        # ModelProto.metadata_props
# Deepness (QGIS plugin) reads these from an ONNX model's metadata (docs/deepness.md)
DEEPNESS_TILE = 256


def onnx_path(pt_path: str) -> str:
    """NAME.onnx for NAME.pt (or the path itself when it is already an .onnx)."""
    base, ext = os.path.splitext(pt_path)
    return pt_path if ext.lower() == ".onnx" else base + ".onnx"


# --- protobuf wire format: just enough to split a ModelProto's top-level fields -----------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, int, Optional[int]]]:
    """(field number, start, end, payload start or None) of each top-level field."""
    out, i = [], 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        payload = None
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(buf, i)
            payload, i = i, i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if i > len(buf) or number == 0:
            raise ValueError("truncated or invalid field")
        out.append((number, start, i, payload))
    return out


def _string_field(number: int, value: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(value)) + value


def _metadata_entry(key: str, value: str) -> bytes:
    entry = _string_field(1, key.encode()) + _string_field(2, value.encode())
    return _string_field(_METADATA_FIELD, entry)


def metadata(buf: bytes) -> dict[str, str]:
    """The metadata_props of a serialised ModelProto (what onnx and ONNX Runtime show)."""
    out = {}
    for number, _, end, payload in _fields(buf):
        if number != _METADATA_FIELD or payload is None:
            continue
        sub = buf[payload:end]
        entry = {n: sub[p:e].decode("utf-8", "replace") for n, _, e, p in _fields(sub)
                 if p is not None}
        out[entry.get(1, "")] = entry.get(2, "")
    return out


def body_digest(buf: bytes) -> str:
    """SHA-256 of every top-level field but the metadata (graph, weights, opsets)."""
    h = hashlib.sha256()
    for number, start, end, _ in _fields(buf):
        if number != _METADATA_FIELD:
            h.update(buf[start:end])
    return h.hexdigest()


def header_digest(header: dict) -> str:
    text = json.dumps(header, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading ------------------------------------------------------------------------------

@dataclass
class OnnxModel:
    """A checked .onnx model: its checkpoint header and the bytes ONNX Runtime loads."""
    path: str
    header: dict
    data: bytes

    @property
    def halo(self) -> int:
        return int(self.header["halo"])

    @property
    def inputs(self) -> list[str]:
        return list(self.header["inputs"])

    def network(self):
        """The model in an ONNX Runtime session (core/backends.py)."""
        from ..backends import OnnxNetwork

        return OnnxNetwork(self.data, self.halo, self.inputs)


def _remedy(path: str) -> str:
    from . import bundled

    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(bundled.MODELS_DIR):
        return ("It is a model bundled with the plugin: reinstall the plugin (Plugins ▸ Manage "
                "and Install Plugins, or `make install` from the source folder) to restore it.")
    return ("Export it again from its .pt (python3 scripts/export_onnx.py MODEL.pt, or train "
            "with 'Train DEM SR', which writes it), or copy it again.")


def _damaged(path: str, what: str) -> DemSrError:
    return DemSrError(f"ONNX model '{path}' is damaged: {what}. {_remedy(path)}")


def read(path: str) -> OnnxModel:
    """Read and check an .onnx model written by export(); DemSrError says what is wrong."""
    name = os.path.basename(path or "")
    if not path or not os.path.isfile(path):
        raise DemSrError(f"ONNX model file '{path}' does not exist.")
    if os.path.getsize(path) > MAX_BYTES:
        raise DemSrError(f"'{name}' is larger than any DEM SR model ({MAX_BYTES // 2**20} MB); "
                         "check that MODEL is the right file.")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        meta = metadata(data)
    except ValueError as exc:
        raise _damaged(path, f"it is not a readable ONNX file ({exc})") from None
    if HEADER_KEY not in meta:
        raise DemSrError(
            f"'{name}' is an ONNX file but not a DEM SR model (no '{HEADER_KEY}' metadata): "
            "foreign models cannot be used. Export one from a .pt written by 'Train DEM SR' "
            "(python3 scripts/export_onnx.py MODEL.pt).")
    try:
        header = json.loads(meta[HEADER_KEY])
        record = json.loads(meta.get(INTEGRITY_KEY, "null"))
    except ValueError:
        raise _damaged(path, "its header is not readable") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _damaged(path, "its header is not a DEM SR ONNX header")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise DemSrError(f"'{name}' was written by a newer version of the plugin "
                         f"(format {header.get('version')}); update the plugin.")
    if not isinstance(record, dict) or record.get("algorithm") != HASH:
        raise _damaged(path, "it carries no readable integrity record")
    if record.get("header") != header_digest(header):
        raise _damaged(path, "its header (architecture, hyper-parameters, factors) does not "
                             "match the integrity hash written with it")
    if record.get("body") != body_digest(data):
        raise _damaged(path, "its graph or weights do not match the integrity hash written "
                             "with them (the file was changed or corrupted on disk or in "
                             "transfer)")
    check_header(header, path)
    return OnnxModel(path, header, data)


def check_header(header: dict, path: str) -> None:
    """Architecture limits, recorded factors, halo and inputs: what checkpoint.load checks
    of a .pt, without torch."""
    name = os.path.basename(path)
    try:
        arch, scale = str(header["architecture"]), header["scale"]
        hparams, norm = header["hparams"], header["normalisation"]
        provenance, halo, inputs = header["provenance"], header["halo"], header["inputs"]
    except (KeyError, TypeError):
        raise _damaged(path, "its header is incomplete") from None
    try:
        registry.check(arch, scale, hparams, norm)
    except DemSrError as exc:
        raise DemSrError(f"ONNX model '{path}' has a setting outside what architecture "
                         f"'{arch}' allows: {exc}. {_remedy(path)}") from None
    if not isinstance(provenance, dict):
        raise _damaged(path, "its provenance is not a table")
    if arch != "dshat":
        coverage.of_checkpoint(int(scale), provenance, name)
    if not isinstance(halo, int) or isinstance(halo, bool) or not 0 <= halo <= MAX_HALO:
        raise _damaged(path, f"its halo {halo!r} is not a number of pixels in 0–{MAX_HALO}")
    if (not isinstance(inputs, list) or not 1 <= len(inputs) <= 8
            or not all(isinstance(i, str) and i.isidentifier() for i in inputs)):
        raise _damaged(path, f"its inputs {inputs!r} are not a list of names")


# --- writing (needs torch) ----------------------------------------------------------------

def _input_specs(model, hparams: dict) -> list[tuple[str, int, bool]]:
    """(name, channels, per-pixel) of each input of the network's forward, from its signature:
    'sigma' is one value per window (B,1,1,1), 'aux' has one channel per auxiliary channel
    the checkpoint lists, every other input one channel."""
    names = [p for p in inspect.signature(model.forward).parameters]
    specs = []
    for n in names:
        if n == "sigma":
            specs.append((n, 1, False))
        elif n == "aux":
            specs.append((n, len(hparams.get("aux_channels", [])), True))
        else:
            specs.append((n, 1, True))
    return specs


def _test_inputs(specs, batch: int, h: int, w: int, seed: int) -> list[np.ndarray]:
    """A smooth surface of a few hundred metres of relief (and plausible other inputs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for name, channels, per_pixel in specs:
        if not per_pixel:
            out.append(np.full((batch, channels, 1, 1), 3.0, np.float32))
        elif name == "dem":
            z = [800 + 150 * np.sin(xx / (5 + k) + k) * np.cos(yy / 7) + 10 * rng.random((h, w))
                 for k in range(batch)]
            out.append(np.stack(z)[:, None].astype(np.float32))
        elif name == "voids":
            v = np.zeros((batch, channels, h, w), np.float32)
            v[:, :, h // 3:h // 2, w // 3:w // 2] = 1 + rng.random((h // 2 - h // 3,
                                                                     w // 2 - w // 3))
            out.append(v)
        else:
            out.append(rng.random((batch, channels, h, w)).astype(np.float32))
    return out


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (the .pt an .onnx was made from)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export(ckpt, path: str, source_digest: str, source_file: str = "") -> float:
    """Write ckpt (a loaded checkpoint.Checkpoint) as ONNX to `path`, atomically; returns the
    largest difference to PyTorch on the test surface (refused above EXPORT_TOLERANCE)."""
    import io
    import warnings

    from ..backends import OnnxNetwork, import_runtime, TORCH
    torch = import_runtime(TORCH)
    model = ckpt.build()
    specs = _input_specs(model, ckpt.hparams)
    halo = int(model.halo)
    side = max(24, 2 * halo + 8)
    dummy = [torch.from_numpy(a) for a in _test_inputs(specs, 1, side, side + 5, 0)]
    axes = {n: ({0: "batch", 2: "height", 3: "width"} if per_pixel else {0: "batch"})
            for n, _, per_pixel in specs}
    axes["output"] = {0: "batch", 2: "out_height", 3: "out_width"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, tuple(dummy), buf, dynamo=False, opset_version=OPSET,
                          input_names=[n for n, _, _ in specs], output_names=["output"],
                          dynamic_axes=axes, do_constant_folding=True)
    body = buf.getvalue()
    header = {"format": FORMAT, "version": VERSION, "architecture": ckpt.architecture,
              "scale": int(ckpt.scale), "hparams": ckpt.hparams,
              "normalisation": ckpt.normalisation, "interpolation": ckpt.interpolation,
              "provenance": ckpt.provenance, "halo": halo,
              "inputs": [n for n, _, _ in specs], "source_weights": source_digest,
              "source_file": source_file}
    header = json.loads(json.dumps(header))  # tuples → lists: what read() will see
    record = {"algorithm": HASH, "header": header_digest(header), "body": body_digest(body)}
    data = (body + _metadata_entry(HEADER_KEY, json.dumps(header, sort_keys=True))
            + _metadata_entry(INTEGRITY_KEY, json.dumps(record, sort_keys=True)))
    worst = _compare(model, OnnxNetwork(data, halo, header["inputs"]), specs, torch)
    if worst > EXPORT_TOLERANCE:
        raise DemSrError(f"The ONNX export of '{ckpt.architecture}' ×{ckpt.scale} differs from "
                         f"PyTorch by {worst:.3g} m on a test surface (more than "
                         f"{EXPORT_TOLERANCE:g} m); it was not written.")
    write_atomic(path, data)
    return worst


def export_checkpoint(pt_path: str, out_path: Optional[str] = None) -> tuple[str, float]:
    """NAME.onnx beside NAME.pt (or out_path) from a checkpoint file, checked as any .pt is
    (checkpoint.load); returns (path written, largest difference to PyTorch)."""
    from . import checkpoint, trust

    ckpt = checkpoint.load(pt_path, prefer_onnx=False)
    out = out_path or onnx_path(pt_path)
    return out, export(ckpt, out, trust.weights_digest(ckpt.state_dict),
                       file_digest(pt_path))


def _compare(model, network, specs, torch) -> float:
    """Largest |ONNX Runtime − PyTorch| over two batches of other sizes than the export's."""
    worst = 0.0
    for batch, h, w, seed in ((2, 61, 47, 1), (1, 90, 128, 2)):
        arrays = _test_inputs(specs, batch, h, w, seed)
        with torch.inference_mode():
            ref = model(*[torch.from_numpy(a) for a in arrays]).numpy()
        got = network.run(*arrays)
        if got.shape != ref.shape:
            return float("inf")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def export_deepness(ckpt, path: str, resolution_cm: float, tile: int = DEEPNESS_TILE) -> dict:
    """An ONNX model for the Deepness QGIS plugin (integer-scale SR models only): fixed
    (1,1,tile,tile) input, metadata model_type 'Superresolution', resolution, tile size and a
    standardisation that cancels Deepness's 8-bit scaling ((x/255 − 0)/(1/255) = x; the
    network normalises elevations itself, locally). Returns the metadata written."""
    import io
    import warnings

    from ..backends import import_runtime, TORCH
    if ckpt.architecture == "dshat":
        raise DemSrError("Deepness runs super-resolution models; a DS-HAT void-repair model "
                         "needs its mask and terrain channels, which Deepness cannot give.")
    torch = import_runtime(TORCH)
    model = ckpt.build()
    if not 2 * int(model.halo) < tile <= 4096:
        raise DemSrError(f"Tile size {tile} must be above twice the model's halo "
                         f"({2 * int(model.halo)} px) and at most 4096.")
    buf = io.BytesIO()
    dummy = torch.from_numpy(_test_inputs([("dem", 1, True)], 1, tile, tile, 0)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), buf, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"])
    meta = {"model_type": "Superresolution", "resolution": f"{float(resolution_cm):g}",
            "tile_size": str(int(tile)), "tiles_size": str(int(tile)),
            "scale_factor": str(int(ckpt.scale)),
            "standardization_mean": json.dumps([0.0]),
            "standardization_std": json.dumps([1.0 / 255.0]),
            "demsr_halo": str(int(model.halo)),
            "demsr_source": f"{ckpt.architecture} ×{ckpt.scale}"}
    data = buf.getvalue() + b"".join(_metadata_entry(k, v) for k, v in meta.items())
    write_atomic(path, data)
    return meta
