"""Passing verdicts of the load-time validation, kept on disk across processes.

The load-time checks (structure, declared points, one dummy forward) see only the
adapter's declaration, the config, the attention kernel, the module tree and the
code that runs it, so their verdict is a function of those. A checkpoint loaded
from a path in one process need not be validated again in the next one (a script
re-run, a notebook restarted): the first one's pass is written here, under a
digest of everything the checks depend on:

- the declaration, written down exactly: every field, and for each callable in it
  its code, defaults, closure cells and the module globals it names (recursively,
  for functions outside torch, transformers, nnsight and nnrosetta);
- the config, the attention implementation, every module's path and class, every
  parameter's name, shape, dtype and device, and each module class's ``forward`` code and
  source file (size and modification time);
- the versions of Python, torch, transformers and nnsight, and the size and
  modification time of every nnrosetta source file.

A declaration holding something that has no exact written form (an arbitrary
object) is never cached on disk; failures are never cached. ``NNROSETTA_VALIDATION_CACHE=0``
turns the disk cache off; it lives under ``$NNROSETTA_CACHE`` (default ``~/.cache/nnrosetta``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Optional

import torch

VARIABLE = "NNROSETTA_VALIDATION_CACHE"
#: Bumped when what a cached verdict means changes.
FORMAT = 2  # layer outputs: (container, size, whether entries beside the hidden state carry state)
#: Verdicts kept; the oldest are removed past this many.
MAX_ENTRIES = 256
#: Modules whose functions are named, not walked: their versions (or file stamps) are in the digest.
LIBRARIES = ("torch", "transformers", "nnsight", "nnrosetta", "builtins", "math", "operator", "functools",
             "typing", "collections", "re", "itertools", "dataclasses", "enum")
#: The container types a layer's output may be recorded as (see `StandardizedTransformer._record_layer_shapes`).
CONTAINERS = {"tuple": tuple, "list": list}


class Uncacheable(Exception):
    """A value in the declaration has no exact written form: this validation is not kept on disk."""


def enabled() -> bool:
    return os.environ.get(VARIABLE, "1").strip().lower() not in ("0", "off", "false", "no")


def folder() -> Path:
    from .pretrained import cache_root

    return cache_root() / "validated"


def digest(model: Any, key: tuple) -> Optional[str]:
    """The digest of everything the checks depend on, or None when the declaration cannot be written down."""
    try:
        adapter = canonical(model.adapter, set())
    except (Uncacheable, RecursionError):
        return None
    import nnsight
    import transformers

    from . import __version__

    tree, parameters, classes = [], [], set()
    for name, module in model._module.named_modules():  # one walk: paths, classes and parameters
        tree.append([name, _name(type(module))])
        classes.add(type(module))
        prefix = f"{name}." if name else ""
        parameters.extend(
            [prefix + local, list(p.shape), str(p.dtype), str(p.device)] for local, p in module._parameters.items()
            if p is not None
        )
    parts = [
        FORMAT,
        [sys.version, torch.__version__, transformers.__version__, getattr(nnsight, "__version__", "?"), __version__],
        _nnrosetta_stamps(),
        [str(part) for part in key[:2]] + [key[2], key[3], str(key[4])],
        adapter,
        tree,
        sorted(parameters),
        [[_name(cls), _file_stamp(cls.__module__), _code_digest(getattr(cls.forward, "__code__", None))]
         for cls in sorted(classes, key=_name)],
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load(stamp: str) -> Optional[dict[int, tuple[type, int, bool]]]:
    """The layer output containers recorded by the validation kept under ``stamp``, or None."""
    try:
        data = json.loads((folder() / f"{stamp}.json").read_text())
        if data.get("format") != FORMAT:
            return None
        return {
            int(i): (CONTAINERS[kind], int(size), bool(carries_state))
            for i, (kind, size, carries_state) in data["layer_outputs"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(stamp: str, layer_outputs: dict) -> None:
    """Keep a pass (written whole or not at all; a cache that cannot be written is skipped)."""
    recorded = {}
    for index, (container, size, carries_state) in layer_outputs.items():
        kind = next((name for name, cls in CONTAINERS.items() if cls is container), None)
        if kind is None:
            return  # a container this cache cannot name back: validate again next time
        recorded[str(index)] = [kind, size, carries_state]
    try:
        where = folder()
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False) as handle:
            json.dump({"format": FORMAT, "layer_outputs": recorded}, handle)
        os.replace(handle.name, where / f"{stamp}.json")
        _prune(where)
    except OSError:
        return


def clear() -> None:
    """Remove every verdict kept on disk."""
    for path in folder().glob("*.json"):
        try:
            path.unlink()
        except OSError:
            pass


def _prune(where: Path) -> None:
    entries = sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    for path in entries[: max(len(entries) - MAX_ENTRIES, 0)]:
        path.unlink(missing_ok=True)


# -- writing a declaration down exactly -------------------------------------------------


def canonical(value: Any, seen: set) -> Any:
    """A JSON-able form of ``value`` that differs whenever what the checks would see differs."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [canonical(item, seen) for item in value]]
    if isinstance(value, (set, frozenset)):
        return ["set", sorted(json.dumps(canonical(item, seen), sort_keys=True) for item in value)]
    if isinstance(value, (dict, types.MappingProxyType)):
        items = [[json.dumps(canonical(k, seen), sort_keys=True), canonical(v, seen)] for k, v in value.items()]
        return ["dict", _name(type(value)), sorted(items, key=lambda item: item[0])]
    if isinstance(value, enum.Enum):
        return ["enum", _name(type(value)), value.name]
    if isinstance(value, type):
        return ["type", _name(value), _file_stamp(value.__module__)]
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if isinstance(value, (torch.dtype, torch.device)):
        return ["torch", str(value)]
    if dataclasses.is_dataclass(value):
        fields = {f.name: canonical(getattr(value, f.name), seen) for f in dataclasses.fields(value)}
        return ["dataclass", _name(type(value)), _file_stamp(type(value).__module__), fields]
    if isinstance(value, functools.partial):
        return ["partial", canonical(value.func, seen), canonical(value.args, seen), canonical(value.keywords, seen)]
    if isinstance(value, types.MethodType):
        return ["method", canonical(value.__func__, seen), canonical(value.__self__, seen)]
    if isinstance(value, types.FunctionType):
        return _function(value, seen)
    if isinstance(value, (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType)):
        return ["builtin", getattr(value, "__module__", None) or "", getattr(value, "__qualname__", repr(value))]
    raise Uncacheable(f"{type(value).__module__}.{type(value).__qualname__}")


def _function(function: types.FunctionType, seen: set) -> Any:
    named = ["function", function.__module__ or "", function.__qualname__]
    if id(function) in seen or (function.__module__ or "").split(".")[0] in LIBRARIES:
        return named  # a library's function: its version is in the digest
    seen.add(id(function))
    code = function.__code__
    globals_used = {
        name: canonical(function.__globals__[name], seen)
        for name in sorted(_names(code))
        if name in function.__globals__
    }
    cells = [canonical(cell.cell_contents, seen) for cell in function.__closure__ or ()]
    return named + [
        _file_stamp(function.__module__),
        _code_digest(code),
        canonical(function.__defaults__, seen),
        canonical(function.__kwdefaults__, seen),
        cells,
        globals_used,
    ]


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _code_digest(code: Optional[types.CodeType]) -> Optional[str]:
    if code is None:
        return None
    hashed = hashlib.sha256(code.co_code)
    hashed.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        hashed.update((_code_digest(constant) if isinstance(constant, types.CodeType) else repr(constant)).encode())
    return hashed.hexdigest()


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _file_stamp(module_name: Optional[str]) -> Optional[list]:
    path = getattr(sys.modules.get(module_name or ""), "__file__", None)
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return [path]
    return [path, stat.st_size, stat.st_mtime_ns]


@functools.lru_cache(maxsize=1)
def _nnrosetta_stamps() -> list:
    """Every nnrosetta source file's size and modification time (read once per process)."""
    root = Path(__file__).parent
    stamps = []
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        stamps.append([str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    return stamps
