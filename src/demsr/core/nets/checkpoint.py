"""One checkpoint format for every architecture.

A plain dict of strings, numbers, lists and tensors, so it loads with
torch.load(weights_only=True) (no pickled code runs). It carries all that
inference needs (architecture, hyper-parameters, scale, normalisation,
interpolation) and how the model was made (data, degradation, epochs, seed,
validation figures).

Trust nothing in the file: load() checks it with core/nets/trust.py (integrity hashes,
the bundled models' file hashes, sane numbers, shapes and cost) before anything is built.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..atomic import replacing
from ..devices import import_torch
from ..errors import DemSrError, explain_os_error
from . import registry
from .trust import (HASH, check_integrity, check_weights, damaged, header_digest, is_bundled,
                    remedy, unreadable, weights_digest)

FORMAT = "demsr-model"
VERSION = 1  # the integrity hashes are an optional field: older plugins still read the files


@dataclass
class Checkpoint:
    architecture: str
    scale: int
    hparams: dict
    normalisation: dict
    interpolation: str
    provenance: dict = field(default_factory=dict)
    state_dict: dict = field(default_factory=dict)
    verified: bool = False  # load() found integrity hashes and they matched
    bundled: bool = False   # the file is one of the plugin's bundled models (by file hash)
    path: str = ""          # the file it was loaded from
    onnx: Any = None        # onnx_model.OnnxModel when loaded from NAME.onnx (no weights here)

    def build(self):
        """The network with these weights, in eval mode, on the CPU."""
        model = registry.build(self.architecture, self.scale, self.hparams, self.normalisation)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise DemSrError(f"The model weights do not fit architecture '{self.architecture}' "
                             f"with {self.hparams}: {str(exc).splitlines()[0]}") from None
        return model.eval()

    def build_for_inference(self, device: str, backend: Optional[str] = None):
        """The network ready to run on `device` (core/backends.Network): in ONNX Runtime
        when `backend` (default: backends.choose(device)) says so and NAME.onnx made from
        these weights is there, else in PyTorch (channels-last: convolutions run about twice
        as fast on CPUs, results equal to 1e-3 m)."""
        from .. import backends

        backend = backend or backends.choose(device)
        if backend == backends.ONNX:
            model = self.onnx or self._matching_onnx()
            if model is not None:
                return model.network()
        if not self.state_dict:  # loaded from an .onnx: its .pt is needed for PyTorch
            if self.path.lower().endswith(".onnx"):
                raise DemSrError(
                    f"'{os.path.basename(self.path)}' is an ONNX model: it runs with ONNX "
                    "Runtime on the CPU (DEVICE=auto without a GPU, or DEVICE=cpu, with ONNX "
                    "Runtime installed). To run on a GPU with PyTorch, give its .pt file.")
            self.state_dict = load(self.path, prefer_onnx=False).state_dict
        if str(device).startswith("cuda"):
            # cuDNN runs fp32 convolutions in TF32 by default on Ampere and later: on an H200
            # that moved Super-resolve's output 0.014 m from the CPU's and made it depend on
            # the batch size (make gpu-check). Inference keeps full fp32.
            torch = import_torch()
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        return backends.TorchNetwork(self.build(), device)

    def _matching_onnx(self):
        """NAME.onnx beside NAME.pt when it was exported from these very weights."""
        from . import onnx_model

        path = onnx_model.onnx_path(self.path) if self.path else ""
        if not path or not os.path.isfile(path):
            return None
        model = onnx_model.read(path)
        header = model.header
        if (header.get("source_weights") != weights_digest(self.state_dict)
                or header.get("architecture") != self.architecture
                or header.get("scale") != int(self.scale)):
            return None  # stale: exported from other weights; PyTorch runs the .pt
        return model


def from_model(model, interpolation: str, provenance: dict | None = None) -> Checkpoint:
    return Checkpoint(architecture=model.arch_name, scale=int(model.scale),
                      hparams=dict(model.hparams), normalisation=dict(model.norm),
                      interpolation=interpolation, provenance=dict(provenance or {}),
                      state_dict={k: v.detach().cpu().clone() for k, v in
                                  model.state_dict().items()})


def write_failed(path: str, exc: BaseException) -> DemSrError:
    """A failed torch.save (model or resume file) in words, without a traceback."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return explain_os_error(exc, path)
    detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return DemSrError(f"Writing '{path}' failed ({detail}): the disk is probably full. Free "
                      "some space or choose an OUTPUT_MODEL on another disk, then run again "
                      "(a resume file, if any, continues the run).")


def save(ckpt: Checkpoint, path: str) -> None:
    """Write atomically, with integrity hashes: a crash never leaves a half-written model,
    and damage to the file is found when it is loaded."""
    torch = import_torch()
    payload = {"format": FORMAT, "version": VERSION, "architecture": ckpt.architecture,
               "scale": int(ckpt.scale), "hparams": ckpt.hparams,
               "normalisation": ckpt.normalisation, "interpolation": ckpt.interpolation,
               "provenance": ckpt.provenance, "state_dict": ckpt.state_dict}
    payload["integrity"] = {"algorithm": HASH, "header": header_digest(payload),
                            "weights": weights_digest(ckpt.state_dict)}
    try:
        with replacing(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        raise write_failed(path, exc) from None


def _from_onnx(path: str, pt_path: str) -> Checkpoint:
    """The checkpoint's header from a checked NAME.onnx (onnx_model.read), without weights."""
    from . import onnx_model

    model = onnx_model.read(path)
    h = model.header
    return Checkpoint(architecture=str(h["architecture"]), scale=int(h["scale"]),
                      hparams=dict(h["hparams"]), normalisation=dict(h["normalisation"]),
                      interpolation=str(h.get("interpolation", "")),
                      provenance=dict(h["provenance"]), verified=True, path=pt_path,
                      onnx=model, bundled=os.path.isfile(pt_path) and is_bundled(pt_path))


def load(path: str, role: str = "MODEL", prefer_onnx: Optional[bool] = None) -> Checkpoint:
    """Read and validate a model file; DemSrError says what is wrong with it. `role` is the
    parameter that named the file (MODEL, INIT_WEIGHTS), for the advice.

    NAME.onnx (given, or beside NAME.pt) is read instead of the .pt when PyTorch is missing
    or `prefer_onnx` (ONNX Runtime will run it: PyTorch is then never imported); None:
    only when PyTorch is missing."""
    from .. import backends
    from .onnx_model import file_digest, onnx_path

    name = os.path.basename(path or "")
    if not path or not os.path.isfile(path):
        raise DemSrError(f"Model file '{path}' does not exist.")
    has_torch = bool(backends.installed_version(backends.TORCH))
    if path.lower().endswith(".onnx"):
        return _from_onnx(path, path)
    sibling = onnx_path(path)
    if (not has_torch or prefer_onnx) and backends.installed_version(backends.ONNX):
        if os.path.isfile(sibling):
            ckpt = _from_onnx(sibling, path)
            made_from = ckpt.onnx.header.get("source_file")
            if not made_from or made_from == file_digest(path):
                return ckpt
            if not has_torch:  # NAME.pt changed since NAME.onnx was made from it
                raise DemSrError(
                    f"'{os.path.basename(sibling)}' was made from another version of '{name}' "
                    f"(retrained or replaced since); make it again where PyTorch is installed "
                    f"(python3 scripts/export_onnx.py {name}), or install PyTorch.")
        if not has_torch:
            raise DemSrError(
                f"'{name}' is a PyTorch model and PyTorch is not installed; ONNX Runtime, which "
                f"is, runs a model from its ONNX copy, and there is no "
                f"'{os.path.basename(sibling)}' beside it. Make one where PyTorch is installed "
                f"(python3 scripts/export_onnx.py {name}; 'Train DEM SR' writes it), or "
                "install PyTorch (Install / repair dependencies…).")
    if not has_torch:
        raise backends.RuntimeMissing()
    torch = import_torch()
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise DemSrError(f"'{name}' is too large to load into the available memory; a DEM SR "
                         "model is at most a few hundred MB. Check that MODEL is the right "
                         "file.") from None
    except Exception as exc:  # corrupt zip, pickle with code, not a torch file at all
        raise unreadable(name, exc, role) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DemSrError(
            f"'{name}' is a PyTorch file but not a DEM SR model (no '{FORMAT}' header); "
            "foreign checkpoints cannot be used. Train one with 'Train DEM SR'.")
    if not isinstance(data.get("version", 0), int) or int(data.get("version", 0)) > VERSION:
        raise DemSrError(f"'{name}' was written by a newer version of the plugin "
                         f"(format {data.get('version')}); update the plugin.")
    missing = [k for k in ("architecture", "scale", "hparams", "normalisation",
                           "interpolation", "state_dict") if k not in data]
    if missing:
        raise DemSrError(f"'{name}' is an incomplete DEM SR model file (missing "
                         f"{', '.join(missing)}). {remedy(path, role)}")
    for key in ("hparams", "normalisation", "state_dict", "provenance"):
        if key in data and not isinstance(data[key], dict):
            raise damaged(path, f"its '{key}' record is a {type(data[key]).__name__}, not a "
                                 "table of named values", role)
    if (isinstance(data["scale"], bool) or not isinstance(data["scale"], (int, float))
            or not math.isfinite(data["scale"])):
        raise damaged(path, f"its scale {data['scale']!r} is not a number", role)
    ckpt = Checkpoint(architecture=str(data["architecture"]), scale=int(data["scale"]),
                      hparams=dict(data["hparams"]), normalisation=dict(data["normalisation"]),
                      interpolation=str(data["interpolation"]),
                      provenance=dict(data.get("provenance", {})),
                      state_dict=dict(data["state_dict"]), path=path)
    ckpt.verified = check_integrity(data, path, role)
    registry.get(ckpt.architecture)  # unknown architecture → clear error
    try:
        registry.check(ckpt.architecture, data["scale"], ckpt.hparams, ckpt.normalisation)
    except DemSrError as exc:
        raise DemSrError(f"Model file '{path}' has a setting outside what architecture "
                         f"'{ckpt.architecture}' allows: {exc}. {remedy(path, role)}") from None
    check_weights(ckpt, path, role)
    ckpt.bundled = is_bundled(path)
    return ckpt
