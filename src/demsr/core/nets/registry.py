"""Architectures by name (BasicSR-style), importable without torch.

Built-in architectures are listed by module so that the Processing provider
can show their names without importing torch; a module registers its class
with @register when it is imported.
"""
from __future__ import annotations

import ast
import importlib
import os
from types import SimpleNamespace

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


# What check() reads of an architecture class; without torch read from its module's source.
_DECLARED = ("scales", "limits", "list_limits", "norm_limits", "defaults")


def _declared(name: str) -> SimpleNamespace:
    """A built-in architecture's declared limits (and check_extra), read from its module's
    source without importing it (it imports torch): running an ONNX model checks the same
    limits as loading a checkpoint. Class attributes must be literals or names imported from
    a torch-free sibling module (local_norm's NORM_LIMITS)."""
    module = _BUILTIN[name]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), module[1:] + ".py")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or not any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "register"
                and d.args and getattr(d.args[0], "value", None) == name
                for d in node.decorator_list):
            continue
        spec = SimpleNamespace()
        for stmt in node.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and getattr(stmt.targets[0], "id", "") in _DECLARED):
                if isinstance(stmt.value, ast.Name) and stmt.value.id in imported:
                    mod, attr = imported[stmt.value.id]
                    value = getattr(importlib.import_module(f".{mod}", __package__), attr)
                else:
                    value = ast.literal_eval(stmt.value)
                setattr(spec, stmt.targets[0].id, value)
            elif isinstance(stmt, ast.FunctionDef) and stmt.name == "check_extra":
                stmt = ast.FunctionDef(**{**stmt.__dict__, "decorator_list": []})
                code = compile(ast.fix_missing_locations(ast.Module([stmt], [])), path, "exec")
                scope = {"__name__": f"{__package__}{module}", "__package__": __package__}
                exec(code, scope)  # the plugin's own source file, as an import would run it
                spec.check_extra = scope["check_extra"]
        return spec
    raise DemSrError(f"Internal error: architecture '{name}' is not declared in {path}.")


def spec(name: str):
    """The architecture's class once imported, else its declared limits (_declared)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:  # never import torch only to check a header
        return _declared(name)
    return get(name)


def _number(value, what: str, lo: float, hi: float, integer: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise DemSrError(f"{what} = {value!r} is not {kind} in {lo:g}–{hi:g}")


def check(name: str, scale, hparams: dict, normalisation: dict) -> None:
    """Hyper-parameters within the architecture's sane ranges, before anything is built.

    Each architecture class declares `scales` (lo, hi), `limits` {hparam: (lo, hi)} for
    integer hparams, `list_limits` {hparam: (max length, lo, hi)} for lists of integers and
    `norm_limits` {key: (lo, hi)} for numeric normalisation settings. Raises DemSrError
    (a plain sentence, the caller names the file) on the first value out of range.
    """
    cls = spec(name)
    if not isinstance(hparams, dict) or not isinstance(normalisation, dict):
        raise DemSrError("hparams and normalisation must be tables of values")
    _number(scale, "scale", *getattr(cls, "scales", (1, 16)), integer=True)
    merged = {**getattr(cls, "defaults", {}), **hparams}
    for key, (lo, hi) in getattr(cls, "limits", {}).items():
        _number(merged.get(key), key, lo, hi, integer=True)
    for key, (longest, lo, hi) in getattr(cls, "list_limits", {}).items():
        values = merged.get(key)
        if not isinstance(values, (list, tuple)) or len(values) > longest:
            raise DemSrError(f"{key} = {values!r} is not a list of at most {longest} values")
        for v in values:
            _number(v, key, lo, hi, integer=True)
    for key, (lo, hi) in getattr(cls, "norm_limits", {}).items():
        if key in normalisation:
            _number(normalisation[key], f"normalisation {key}", lo, hi, integer=False)
    if hasattr(cls, "check_extra"):
        cls.check_extra(merged)


def build(name: str, scale: int, hparams: dict | None = None,
          normalisation: dict | None = None):
    """A freshly initialised network of architecture `name`."""
    return get(name)(scale=scale, hparams=hparams or {}, normalisation=normalisation or {})
