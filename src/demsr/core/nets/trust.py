"""What a model file must prove before it is used (checkpoint.load calls these).

It carries SHA-256 hashes of its header and of its weights (written by checkpoint.save,
checked here; files without them still load, with a note). Those hashes catch accidental
damage only (a bad copy, a failing disk): anyone who edits the weights can recompute them.
What the plugin can vouch for is a bundled model, whose whole file must match a hash listed
in code (bundled.BUNDLED_SHA256); every other file is "not a bundled model, origin
unknown". Its hyper-parameters are checked against the architecture's sane ranges, the
network is first built without memory (meta device) to check that the weights fit and that
its compute and context are bounded (check_cost), and every tensor must be floating-point,
finite, of plausible size, with possible statistics (no negative variance).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Optional

from ..devices import import_torch
from ..errors import DemSrError
from . import bundled, registry

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

HASH = "sha256"
# No trained convolution weight or normalisation statistic comes near this; a flipped
# exponent bit does (1e+38).
MAX_ABS_WEIGHT = 1e6
HEADER_KEYS = ("format", "version", "architecture", "scale", "hparams", "normalisation",
               "interpolation", "provenance")


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


# What to do instead, by the parameter that named the file.
_INSTEAD = {"MODEL": "leave MODEL empty to use the bundled model",
            "INIT_WEIGHTS": "leave INIT_WEIGHTS empty to train from scratch"}


def _instead(role: str) -> str:
    return _INSTEAD.get(role, f"give another file as {role}")


def remedy(path: str, role: str = "MODEL") -> str:
    """How to get a good copy of this file."""
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(bundled.MODELS_DIR):
        return ("It is a model bundled with the plugin: reinstall the plugin (Plugins ▸ Manage "
                "and Install Plugins, or `make install` from the source folder) to restore it.")
    return ("Copy it again from where it was trained, or train it again with 'Train DEM SR'; "
            f"{_instead(role)} meanwhile.")


def damaged(path: str, what: str, role: str = "MODEL") -> DemSrError:
    return DemSrError(f"Model file '{path}' is damaged: {what}. {remedy(path, role)}")


def check_integrity(data: dict, path: str, role: str = "MODEL") -> bool:
    """True when the file carries hashes and they match; False when it has none."""
    record = data.get("integrity")
    if record is None:
        return False
    if not isinstance(record, dict) or record.get("algorithm") != HASH:
        raise damaged(path, "its integrity record is unreadable", role)
    if record.get("header") != header_digest(data):
        raise damaged(path, "its header (architecture, hyper-parameters, provenance) does not "
                             "match the integrity hash written with it", role)
    if record.get("weights") != weights_digest(data["state_dict"]):
        raise damaged(path, "its weights do not match the integrity hash written with them "
                             "(the file was changed or corrupted on disk or in transfer)", role)
    return True


def check_numbers(ckpt: Checkpoint, path: str, role: str = "MODEL") -> None:
    """Every tensor floating-point (integer counters of normalisation layers excepted),
    finite, of plausible size, and every running variance ≥ 0: integer, complex or
    impossible statistics give all-nodata or absurd outputs, not an error."""
    torch = import_torch()
    for key, value in ckpt.state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise damaged(path, f"'{key}' is not a tensor", role)
        if key.endswith("num_batches_tracked") and value.dtype in (torch.int64, torch.int32):
            continue  # BatchNorm's step counter
        if not value.is_floating_point():
            raise damaged(path, f"weights '{key}' are {str(value.dtype).replace('torch.', '')}, "
                                 "not floating-point numbers as every trained weight", role)
        if not value.numel():
            continue
        v = value.float()
        if not bool(torch.isfinite(v).all()):
            raise damaged(path, f"weights '{key}' contain NaN or infinite values", role)
        biggest = float(v.abs().max())
        if biggest > MAX_ABS_WEIGHT:
            raise damaged(path, f"weights '{key}' reach {biggest:.3g}, far beyond any "
                                 "trained value", role)
        if key.endswith("running_var") and float(v.min()) < 0:
            raise damaged(path, f"'{key}' holds a negative variance ({float(v.min()):.3g}), "
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


def check_weights(ckpt: Checkpoint, path: str, role: str = "MODEL") -> None:
    """Every tensor sound (check_numbers); the network's shapes, built on the meta device
    (no memory), equal the file's and its cost is bounded, so a crafted header allocates
    nothing."""
    torch = import_torch()
    check_numbers(ckpt, path, role)
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
            f"other shapes {wrong or 'none'}). {remedy(path, role)}")


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


def unreadable(name: str, exc: Exception, role: str = "MODEL") -> DemSrError:
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
