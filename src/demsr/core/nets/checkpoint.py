"""One checkpoint format for every architecture.

A plain dict of strings, numbers, lists and tensors, so it loads with
torch.load(weights_only=True) (no pickled code runs). It carries all that
inference needs (architecture, hyper-parameters, scale, normalisation,
interpolation) and how the model was made (data, degradation, epochs, seed,
validation figures).

Trust nothing in the file: it carries SHA-256 hashes of its header and of its weights
(written by save(), checked by load(); files without them still load, with a note). Those
hashes catch accidental damage only (a bad copy, a failing disk): anyone who edits the
weights can recompute them. What the plugin can vouch for is a bundled model, whose whole
file must match a hash listed in code (bundled.BUNDLED_SHA256); every other file is "not a
bundled model, origin unknown". Its hyper-parameters are checked against the
architecture's sane ranges, the network is first built without memory (meta device) to
check that the weights fit and that its compute and context are bounded (check_cost), and
every tensor must be floating-point, finite, of plausible size, with possible statistics
(no negative variance).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..atomic import replacing
from ..devices import import_torch
from ..errors import DemSrError, explain_os_error
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


# What to do instead, by the parameter that named the file.
_INSTEAD = {"MODEL": "leave MODEL empty to use the bundled model",
            "INIT_WEIGHTS": "leave INIT_WEIGHTS empty to train from scratch"}


def _instead(role: str) -> str:
    return _INSTEAD.get(role, f"give another file as {role}")


def _remedy(path: str, role: str = "MODEL") -> str:
    """How to get a good copy of this file."""
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(bundled.MODELS_DIR):
        return ("It is a model bundled with the plugin: reinstall the plugin (Plugins ▸ Manage "
                "and Install Plugins, or `make install` from the source folder) to restore it.")
    return ("Copy it again from where it was trained, or train it again with 'Train DEM SR'; "
            f"{_instead(role)} meanwhile.")


def _damaged(path: str, what: str, role: str = "MODEL") -> DemSrError:
    return DemSrError(f"Model file '{path}' is damaged: {what}. {_remedy(path, role)}")


def _check_integrity(data: dict, path: str, role: str = "MODEL") -> bool:
    """True when the file carries hashes and they match; False when it has none."""
    record = data.get("integrity")
    if record is None:
        return False
    if not isinstance(record, dict) or record.get("algorithm") != HASH:
        raise _damaged(path, "its integrity record is unreadable", role)
    if record.get("header") != header_digest(data):
        raise _damaged(path, "its header (architecture, hyper-parameters, provenance) does not "
                             "match the integrity hash written with it", role)
    if record.get("weights") != weights_digest(data["state_dict"]):
        raise _damaged(path, "its weights do not match the integrity hash written with them "
                             "(the file was changed or corrupted on disk or in transfer)", role)
    return True


def _check_numbers(ckpt: Checkpoint, path: str, role: str = "MODEL") -> None:
    """Every tensor floating-point (integer counters of normalisation layers excepted),
    finite, of plausible size, and every running variance ≥ 0: integer, complex or
    impossible statistics give all-nodata or absurd outputs, not an error."""
    torch = import_torch()
    for key, value in ckpt.state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise _damaged(path, f"'{key}' is not a tensor", role)
        if key.endswith("num_batches_tracked") and value.dtype in (torch.int64, torch.int32):
            continue  # BatchNorm's step counter
        if not value.is_floating_point():
            raise _damaged(path, f"weights '{key}' are {str(value.dtype).replace('torch.', '')}, "
                                 "not floating-point numbers as every trained weight", role)
        if not value.numel():
            continue
        v = value.float()
        if not bool(torch.isfinite(v).all()):
            raise _damaged(path, f"weights '{key}' contain NaN or infinite values", role)
        biggest = float(v.abs().max())
        if biggest > MAX_ABS_WEIGHT:
            raise _damaged(path, f"weights '{key}' reach {biggest:.3g}, far beyond any "
                                 "trained value", role)
        if key.endswith("running_var") and float(v.min()) < 0:
            raise _damaged(path, f"'{key}' holds a negative variance ({float(v.min()):.3g}), "
                                 "which no data can give", role)


# Bounds on what one model may cost, far above every architecture's defaults and bundled
# models (the widest, GISR's defaults: 1.3 M multiply-adds and 512 channels per pixel,
# 1.4 M weights, 40 px of context), far below what exhausts a desktop (a DS-HAT header inside
# every declared range asked for more than 6 GB on a small tile).
MAX_MACS_PER_PIXEL = 20_000_000
MAX_CHANNELS = 4096          # feature values one convolution reads and writes per pixel
MAX_PARAMETERS = 50_000_000
MAX_HALO = 256               # pixels of context each side of an output pixel


def network_cost(shell) -> dict:
    """Per-pixel multiply-adds and widest convolution (read + written channels) of a network
    (built on the meta device: only shapes are read), its weights and its context (halo)."""
    import torch.nn as nn

    macs, widest = 0, 0
    for module in shell.modules():
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += module.out_channels * (module.in_channels // module.groups) * kh * kw
            widest = max(widest, module.in_channels + module.out_channels)
    params = sum(p.numel() for p in shell.parameters())
    return {"macs": macs, "channels": widest, "parameters": params,
            "halo": int(getattr(shell, "halo", 0))}


def check_cost(shell, ckpt: Checkpoint, path: str) -> None:
    """Refuse a model whose compute, width, size or context is beyond any sane network,
    though each header field lies inside its range."""
    cost = network_cost(shell)
    limits = (("macs", MAX_MACS_PER_PIXEL, "multiply-adds per pixel"),
              ("channels", MAX_CHANNELS, "feature channels in one layer"),
              ("parameters", MAX_PARAMETERS, "weights"),
              ("halo", MAX_HALO, "pixels of context"))
    for key, limit, what in limits:
        if cost[key] > limit:
            raise DemSrError(
                f"Model file '{path}' describes a '{ckpt.architecture}' network of "
                f"{cost[key]:,} {what} (at most {limit:,} are accepted): it would exhaust the "
                "memory or run for hours. No trained DEM model needs that; check that this is "
                "the right file.")


def _check_weights(ckpt: Checkpoint, path: str, role: str = "MODEL") -> None:
    """Every tensor sound (_check_numbers); the network's shapes, built on the meta device
    (no memory), equal the file's and its cost is bounded, so a crafted header allocates
    nothing."""
    torch = import_torch()
    _check_numbers(ckpt, path, role)
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
    check_cost(shell, ckpt, path)
    found = {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])[:3]
        raise DemSrError(
            f"Model file '{path}': its weights do not fit architecture '{ckpt.architecture}' "
            f"with {ckpt.hparams} (missing {missing or 'none'}, unexpected {extra or 'none'}, "
            f"other shapes {wrong or 'none'}). {_remedy(path, role)}")


def integrity_note(ckpt: Checkpoint, path: str) -> Optional[str]:
    """A line for the log about where a model comes from: None for a bundled model (its
    file matches the hash listed in code); otherwise what its own hash can and cannot say."""
    if ckpt.bundled:
        return None
    name = os.path.basename(path)
    shipped = (" Its name is a bundled model's, but the file differs from the one shipped "
               "with this version of the plugin (reinstall the plugin to restore it)."
               if name in bundled.BUNDLED_SHA256 else "")
    hashed = ("its integrity hash matches, which rules out accidental damage, not deliberate "
              "changes" if ckpt.verified else
              "it carries no integrity hash, so damage to the file cannot be detected (its "
              "weights were checked to be finite and to fit the network)")
    return (f"Model '{name}' is not a bundled model, origin unknown: {hashed}.{shipped} A "
            "model file decides every output value: use only files from people you trust, "
            "as with a program.")


def unsafe_load_text(exc: Exception) -> Optional[str]:
    """Why a safe torch.load refused a file, in words (None: not a refusal of the safe
    loader). PyTorch's own text advises weights_only=False, which would run code from the
    file: never pass that on."""
    text = str(exc)
    if "weights_only" not in text and "Weights only load failed" not in text:
        return None
    if "global" in text.lower():
        return ("it contains Python objects or code besides tensors, which a safe load "
                "refuses to run (it may be a checkpoint from another program, or a malicious "
                "file); nothing in it was executed")
    return ("it is not a file of tensors: random or damaged bytes, or data another program "
            "pickled (which may hold code); nothing in it was executed")


def _unreadable(name: str, exc: Exception, role: str = "MODEL") -> DemSrError:
    """The message for a file torch cannot load safely."""
    why = unsafe_load_text(exc)
    if why:
        return DemSrError(f"'{name}' is not a readable DEM SR model file: {why}. Give a .pt "
                          f"file written by 'Train DEM SR', or {_instead(role)}.")
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return DemSrError(
        f"'{name}' is not a readable DEM SR model file ({type(exc).__name__}: {text}). It may "
        "be truncated or damaged: give a .pt file written by 'Train DEM SR' (copy it again if "
        f"it was transferred), or {_instead(role)}.")


def is_bundled(path: str) -> bool:
    """The file is byte for byte one of the models shipped with the plugin."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() in bundled.BUNDLED_SHA256.values()


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
        raise _unreadable(name, exc, role) from None
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
                         f"{', '.join(missing)}). {_remedy(path, role)}")
    for key in ("hparams", "normalisation", "state_dict", "provenance"):
        if key in data and not isinstance(data[key], dict):
            raise _damaged(path, f"its '{key}' record is a {type(data[key]).__name__}, not a "
                                 "table of named values", role)
    if (isinstance(data["scale"], bool) or not isinstance(data["scale"], (int, float))
            or not math.isfinite(data["scale"])):
        raise _damaged(path, f"its scale {data['scale']!r} is not a number", role)
    ckpt = Checkpoint(architecture=str(data["architecture"]), scale=int(data["scale"]),
                      hparams=dict(data["hparams"]), normalisation=dict(data["normalisation"]),
                      interpolation=str(data["interpolation"]),
                      provenance=dict(data.get("provenance", {})),
                      state_dict=dict(data["state_dict"]), path=path)
    ckpt.verified = _check_integrity(data, path, role)
    registry.get(ckpt.architecture)  # unknown architecture → clear error
    try:
        registry.check(ckpt.architecture, data["scale"], ckpt.hparams, ckpt.normalisation)
    except DemSrError as exc:
        raise DemSrError(f"Model file '{path}' has a setting outside what architecture "
                         f"'{ckpt.architecture}' allows: {exc}. {_remedy(path, role)}") from None
    _check_weights(ckpt, path, role)
    ckpt.bundled = is_bundled(path)
    return ckpt
