"""nnrosetta: one interface to the internals of every transformer language model."""

from .adapter import Adapter, ConfigKeys
from .attention_spec import AttentionSpec, CallArgument, HeadLabels, HeadsSpec
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
    "AttentionImplementationError",
    "AttentionSpec",
    "CallArgument",
    "Capability",
    "CapabilityError",
    "ConfigKeys",
    "HeadLabels",
    "HeadsSpec",
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
    "SourceLabelError",
    "StandardizedTransformer",
    "TopK",
    "UnsupportedArchitectureError",
    "default_registry",
    "hookimpl",
    "register_plugin",
]
