"""nnrosetta: one interface to the internals of every transformer language model."""

from .adapter import Adapter, ConfigKeys
from .capabilities import Capability
from .errors import (
    AccessorAssignmentError,
    AdapterConflictError,
    CapabilityError,
    InvalidAdapterError,
    InvalidInputError,
    LayerIndexError,
    MissingDependencyError,
    NnrosettaError,
    PluginLoadError,
    RenamingError,
    ShapeError,
    UnsupportedArchitectureError,
)
from .hookspecs import hookimpl
from .model import StandardizedTransformer
from .moe import MoESpec, TopK
from .registry import Registry, default_registry, register_plugin

__version__ = "0.1.0"

__all__ = [
    "AccessorAssignmentError",
    "Adapter",
    "AdapterConflictError",
    "Capability",
    "CapabilityError",
    "ConfigKeys",
    "InvalidAdapterError",
    "InvalidInputError",
    "LayerIndexError",
    "MoESpec",
    "MissingDependencyError",
    "NnrosettaError",
    "PluginLoadError",
    "Registry",
    "RenamingError",
    "ShapeError",
    "StandardizedTransformer",
    "TopK",
    "UnsupportedArchitectureError",
    "default_registry",
    "hookimpl",
    "register_plugin",
]
