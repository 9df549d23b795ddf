"""One checkpoint format for every architecture.

A plain dict of strings, numbers, lists and tensors, so it loads with
torch.load(weights_only=True) (no pickled code runs). It carries all that
inference needs (architecture, hyper-parameters, scale, normalisation,
interpolation) and how the model was made (data, degradation, epochs, seed,
validation figures).

Trust nothing in the file: it carries SHA-256 hashes of its header and of its weights
(written by save(), checked by load(); files from before the hashes still load, with a
note), its hyper-parameters are checked against the architecture's sane ranges and the
network is first built without memory (meta device) to check that the weights fit, and
every weight must be finite and of plausible size.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..devices import import_torch
from ..errors import DemSrError
from . import bundled, registry

FORMAT = "demsr-model"
VERSION = 1  # the integrity hashes are an optional field: older plugins still read the files
HASH = "sha256"
# No trained convolution weight or normalisation statistic comes near this; a flipped
# exponent bit does (1e+38).
MAX_ABS_WEIGHT = 1e6
HEADER_KEYS = ("format", "version", "architecture", "scale", "hparams", "normalisation",
               "interpolation", "provenance")


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


def header_digest(payload: dict) -> str:
    """SHA-256 of the header fields, as canonical JSON (key order and containers do not
    matter: a tuple that comes back as a list hashes the same)."""
    header = {k: payload.get(k) for k in HEADER_KEYS}
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of every tensor's name, dtype, shape and raw bytes, in name order."""
    torch = import_torch()
    h = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        h.update(key.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


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
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _remedy(path: str) -> str:
    """How to get a good copy of this file."""
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(bundled.MODELS_DIR):
        return ("It is a model bundled with the plugin: reinstall the plugin (Plugins ▸ Manage "
                "and Install Plugins, or `make install` from the source folder) to restore it.")
    return ("Copy it again from where it was trained, or train it again with 'Train DEM SR'; "
            "leave MODEL empty to use the bundled model meanwhile.")


def _damaged(path: str, what: str) -> DemSrError:
    return DemSrError(f"Model file '{path}' is damaged: {what}. {_remedy(path)}")


def _check_integrity(data: dict, path: str) -> bool:
    """True when the file carries hashes and they match; False when it has none."""
    record = data.get("integrity")
    if record is None:
        return False
    if not isinstance(record, dict) or record.get("algorithm") != HASH:
        raise _damaged(path, "its integrity record is unreadable")
    if record.get("header") != header_digest(data):
        raise _damaged(path, "its header (architecture, hyper-parameters, provenance) does not "
                             "match the integrity hash written with it")
    if record.get("weights") != weights_digest(data["state_dict"]):
        raise _damaged(path, "its weights do not match the integrity hash written with them "
                             "(the file was changed or corrupted on disk or in transfer)")
    return True


def _check_weights(ckpt: Checkpoint, path: str) -> None:
    """Every tensor finite and of plausible size; the network's shapes, built on the meta
    device (no memory), equal the file's, so a crafted header allocates nothing."""
    torch = import_torch()
    for key, value in ckpt.state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise _damaged(path, f"'{key}' is not a tensor")
        if value.is_floating_point() and value.numel():
            v = value.float()
            if not bool(torch.isfinite(v).all()):
                raise _damaged(path, f"weights '{key}' contain NaN or infinite values")
            biggest = float(v.abs().max())
            if biggest > MAX_ABS_WEIGHT:
                raise _damaged(path, f"weights '{key}' reach {biggest:.3g}, far beyond any "
                                     "trained value")
    try:
        with torch.device("meta"):
            shell = registry.build(ckpt.architecture, ckpt.scale, ckpt.hparams,
                                   ckpt.normalisation)
        expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    except DemSrError:
        raise
    except Exception as exc:  # noqa: BLE001 - a header the network cannot be built from
        raise DemSrError(f"Model file '{path}' has settings the '{ckpt.architecture}' network "
                         f"cannot be built from ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}).") from None
    found = {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])[:3]
        raise DemSrError(
            f"Model file '{path}': its weights do not fit architecture '{ckpt.architecture}' "
            f"with {ckpt.hparams} (missing {missing or 'none'}, unexpected {extra or 'none'}, "
            f"other shapes {wrong or 'none'}). {_remedy(path)}")


def integrity_note(ckpt: Checkpoint, path: str) -> Optional[str]:
    """A line for the log when a model could not be checked against its hashes."""
    if ckpt.verified:
        return None
    return (f"Model '{os.path.basename(path)}' was written before models carried an integrity "
            "hash, so damage to the file cannot be detected (its weights were checked to be "
            "finite and to fit the network). Saving it again with this version adds one.")


def _unreadable(name: str, exc: Exception) -> DemSrError:
    """The message for a file torch cannot load safely. PyTorch's own text may advise
    weights_only=False, which would run code from the file: never pass that on."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
        return DemSrError(
            f"'{name}' is not a readable DEM SR model file: it contains Python objects or "
            "code besides tensors, which a safe load refuses to run (it may be a checkpoint "
            "from another program, or a malicious file); nothing in it was executed. Give a "
            ".pt file written by 'Train DEM SR', or leave MODEL empty to use the bundled "
            "model.")
    return DemSrError(
        f"'{name}' is not a readable DEM SR model file ({type(exc).__name__}: {text}). It may "
        "be truncated or damaged: give a .pt file written by 'Train DEM SR' (copy it again if "
        "it was transferred), or leave MODEL empty to use the bundled model.")


def _from_onnx(path: str, pt_path: str) -> Checkpoint:
    """The checkpoint's header from a checked NAME.onnx (onnx_model.read), without weights."""
    from . import onnx_model

    model = onnx_model.read(path)
    h = model.header
    return Checkpoint(architecture=str(h["architecture"]), scale=int(h["scale"]),
                      hparams=dict(h["hparams"]), normalisation=dict(h["normalisation"]),
                      interpolation=str(h.get("interpolation", "")),
                      provenance=dict(h["provenance"]), verified=True, path=pt_path,
                      onnx=model)


def load(path: str, prefer_onnx: Optional[bool] = None) -> Checkpoint:
    """Read and validate a model file; DemSrError says what is wrong with it.

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
        raise _unreadable(name, exc) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DemSrError(
            f"'{name}' is a PyTorch file but not a DEM SR model (no '{FORMAT}' header); "
            "foreign checkpoints cannot be used. Train one with 'Train DEM SR'.")
    if not isinstance(data.get("version", 0), int) or int(data.get("version", 0)) > VERSION:
        raise DemSrError(f"'{name}' was written by a newer version of the plugin "
                         f"(format {data.get('version')}); update the plugin.")
    try:
        ckpt = Checkpoint(architecture=str(data["architecture"]), scale=int(data["scale"]),
                          hparams=dict(data["hparams"]), normalisation=dict(data["normalisation"]),
                          interpolation=str(data["interpolation"]),
                          provenance=dict(data.get("provenance", {})),
                          state_dict=dict(data["state_dict"]), path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise DemSrError(f"'{name}' is an incomplete DEM SR model file (missing {exc}).") from None
    ckpt.verified = _check_integrity(data, path)
    registry.get(ckpt.architecture)  # unknown architecture → clear error
    try:
        registry.check(ckpt.architecture, data["scale"], ckpt.hparams, ckpt.normalisation)
    except DemSrError as exc:
        raise DemSrError(f"Model file '{path}' has a setting outside what architecture "
                         f"'{ckpt.architecture}' allows: {exc}. {_remedy(path)}") from None
    _check_weights(ckpt, path)
    return ckpt
