"""Architectures by name (BasicSR-style), importable without torch.

Built-in architectures are listed by module so that the Processing provider
can show their names without importing torch; a module registers its class
with @register when it is imported.
"""
from __future__ import annotations

import importlib

from ..errors import DemSrError

_BUILTIN = {"fast": ".fast", "gisr": ".gisr", "dshat": ".dshat"}
_REGISTRY: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        cls.arch_name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def names() -> list[str]:
    """Known architecture names, default first."""
    extra = sorted(set(_REGISTRY) - set(_BUILTIN))
    return [*_BUILTIN, *extra]


def get(name: str) -> type:
    if name not in _REGISTRY and name in _BUILTIN:
        from ..devices import import_torch

        import_torch()  # a clear TorchMissing error rather than an ImportError
        importlib.import_module(_BUILTIN[name], __package__)
    if name not in _REGISTRY:
        raise DemSrError(f"Unknown model architecture '{name}'. Known: {', '.join(names())}.")
    return _REGISTRY[name]


def build(name: str, scale: int, hparams: dict | None = None,
          normalisation: dict | None = None):
    """A freshly initialised network of architecture `name`."""
    return get(name)(scale=scale, hparams=hparams or {}, normalisation=normalisation or {})
