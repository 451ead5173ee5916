"""One hierarchy for every error nnrosetta raises.

Each message says what was expected, what was seen, and what to do, so a user
reading a traceback in a notebook can fix the call without reading our code.
"""

from __future__ import annotations


class NnrosettaError(Exception):
    """Base class: catch this to catch anything nnrosetta raises on purpose."""


class InvalidAdapterError(NnrosettaError, ValueError):
    """An adapter declaration is malformed; raised when it is registered."""


class AdapterConflictError(NnrosettaError):
    """Two adapters claim the same model type with the same priority."""


class UnsupportedArchitectureError(NnrosettaError):
    """No installed adapter claims the model's type or class."""


class PluginLoadError(NnrosettaError):
    """A plugin failed to import or its hook raised; kept for reporting."""


class RenamingError(NnrosettaError):
    """The adapter's rename map does not fit the loaded model."""


class CapabilityError(NnrosettaError, NotImplementedError):
    """The adapter serving this model does not claim the requested capability."""


class LayerIndexError(NnrosettaError, IndexError):
    """A layer (or head, or expert) index is out of range."""


class ShapeError(NnrosettaError, ValueError):
    """A tensor written or passed in has the wrong shape."""


class AccessorAssignmentError(NnrosettaError, TypeError):
    """A module accessor was assigned to; modules are not replaceable this way."""


class InvalidInputError(NnrosettaError, ValueError):
    """An argument to a method is unusable (an empty prompt list, a target that tokenizes to nothing)."""


class MissingDependencyError(NnrosettaError, ImportError):
    """An optional extra (``nnrosetta[display]``, say) is needed and not installed."""


class SourceLabelError(NnrosettaError, AttributeError):
    """An adapter names a `.source` label that the installed nnsight does not produce."""


class AttentionImplementationError(NnrosettaError, ValueError):
    """The attention implementation asked for cannot serve what was requested (eager is needed)."""


class InvalidValueError(NnrosettaError, ValueError):
    """A tensor written or passed in has the right shape but unusable values: a wrong dtype or
    device, NaN or inf, token ids outside the vocabulary."""


class TraceUsageError(NnrosettaError, RuntimeError):
    """A standard value was used where no trace can serve it: outside a trace, out of forward
    order, or in a trace opened inside another trace of the same model."""


class ModelLoadError(NnrosettaError, OSError):
    """The checkpoint cannot be loaded as given (a corrupt weight file, sizes that disagree with
    the weights, an unknown dtype, a remote run of a local model)."""


class ReadOrderError(TraceUsageError):
    """A trace read a value the forward pass had already run past (reads follow forward order)."""


class RefusedConfigError(UnsupportedArchitectureError):
    """The adapter claims the model type but refuses this config (an option it cannot serve), with the reason."""
