"""nnrosetta: one interface to the internals of every transformer language model.

The public names are imported on first use (module ``__getattr__``): ``import
nnrosetta`` loads neither torch, transformers nor nnsight, so the ``nnrosetta``
command's help, plugin modules that only declare adapters, and the pytest
plugin start at once. ``from nnrosetta import StandardizedTransformer`` pays
for torch when it is asked for. Submodules (``nnrosetta.registry``, ...) are
reachable as attributes too, as they were when everything was imported eagerly.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Each public name and the submodule that defines it.
_EXPORTS = {
    "Adapter": "adapter",
    "Variant": "adapter",
    "AttentionSpec": "specs",
    "ConfigKeys": "specs",
    "HeadsSpec": "specs",
    "MoESpec": "specs",
    "ExpertByHand": "moe_declarations",
    "Routing": "moe_declarations",
    "TopKInRouter": "moe_declarations",
    "LayerTensor": "specs",
    "Residual": "specs",
    "Span": "specs",
    "Argument": "points",
    "Assigned": "points",
    "Called": "points",
    "Inside": "points",
    "Capability": "capabilities",
    "AccessorAssignmentError": "errors",
    "AdapterConflictError": "errors",
    "AttentionImplementationError": "errors",
    "CapabilityError": "errors",
    "InvalidAdapterError": "errors",
    "InvalidInputError": "errors",
    "LayerIndexError": "errors",
    "MissingDependencyError": "errors",
    "NnrosettaError": "errors",
    "PluginLoadError": "errors",
    "RenamingError": "errors",
    "ShapeError": "errors",
    "SourceLabelError": "errors",
    "UnsupportedArchitectureError": "errors",
    "ModelLoadError": "errors",
    "ReadOrderError": "errors",
    "TraceUsageError": "errors",
    "InvalidValueError": "errors",
    "RefusedConfigError": "errors",
    "hookimpl": "hookspecs",
    "StandardizedTransformer": "model",
    "TopK": "moe",
    "Registry": "registry",
    "default_registry": "registry",
    "register_plugin": "registry",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .adapter import Adapter, Variant
    from .capabilities import Capability
    from .errors import (
        AccessorAssignmentError,
        AdapterConflictError,
        AttentionImplementationError,
        CapabilityError,
        InvalidAdapterError,
        InvalidInputError,
        LayerIndexError,
        MissingDependencyError,
        NnrosettaError,
        PluginLoadError,
        RenamingError,
        ShapeError,
        SourceLabelError,
        RefusedConfigError,
        UnsupportedArchitectureError,
        InvalidValueError,
    )
    from .hookspecs import hookimpl
    from .model import StandardizedTransformer
    from .moe import TopK
    from .points import Argument, Assigned, Called, Inside
    from .registry import Registry, default_registry, register_plugin
    from .moe_declarations import ExpertByHand, Routing, TopKInRouter
    from .specs import AttentionSpec, ConfigKeys, HeadsSpec, LayerTensor, MoESpec, Residual, Span


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
