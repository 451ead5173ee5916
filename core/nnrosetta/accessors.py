"""Layer-indexed views over the standard modules and their inputs and outputs.

One generic accessor serves every ``*_input`` / ``*_output`` name: it reads the
module's value inside a trace, unwraps the tuple a family may return to the plain
(batch, seq, hidden) tensor, and on assignment checks the shape and repacks the
tuple the family expects, so user code never sees the family's output format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional

import torch

from .errors import AccessorAssignmentError, LayerIndexError, ShapeError

if TYPE_CHECKING:
    from nnsight.intervention.envoy import Envoy

    from .model import StandardizedTransformer


def normalize_index(index: int, size: int, what: str, size_name: str) -> int:
    """A non-negative index into ``size`` items, or a `LayerIndexError` that says the range."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise LayerIndexError(
            f"{what} index must be an int, got {type(index).__name__} {index!r}; "
            f"use 0..{size - 1} (or negative indices from -{size})."
        )
    if not -size <= index < size:
        raise LayerIndexError(
            f"{what} index {index} is out of range: the model has {size_name}={size}; "
            f"use 0..{size - 1} (or negative indices from -{size})."
        )
    return index % size


class ModuleAccessor:
    """``model.layers``-style view: index i gives the standard module of layer i."""

    def __init__(self, model: "StandardizedTransformer", name: str, child: Optional[str]) -> None:
        self._model = model
        self._name = name
        self._child = child

    def __len__(self) -> int:
        return self._model.num_layers

    def __getitem__(self, index: int) -> "Envoy":
        layer = self._model.layers[normalize_index(index, len(self), "layer", "num_layers")]
        return layer if self._child is None else getattr(layer, self._child)

    def __iter__(self) -> Iterator["Envoy"]:
        return (self[i] for i in range(len(self)))

    def __setitem__(self, index: int, value: Any) -> None:
        raise AccessorAssignmentError(
            f"`{self._name}[{index}] = ...` would replace a module, which nnrosetta does not do. "
            f"To change what the module computes inside a trace, assign its activation instead: "
            f"`model.{self._name}_output[{index}] = tensor` "
            f"(or `_input`); to replace the module itself, edit the HuggingFace model before wrapping it."
        )


def first_tensor(value: Any) -> Any:
    """The hidden-state tensor of a module value: the value itself, or a tuple's first entry."""
    return value[0] if isinstance(value, (tuple, list)) else value


class ActivationAccessor:
    """``model.layers_output``-style view: get and set plain (batch, seq, hidden) tensors."""

    def __init__(
        self,
        model: "StandardizedTransformer",
        name: str,
        modules: Callable[[int], "Envoy"],
        where: Literal["input", "output"],
        size: Callable[[], int],
    ) -> None:
        self._model = model
        self._name = name
        self._modules = modules
        self._where = where
        self._size = size

    def __len__(self) -> int:
        return self._size()

    def _module(self, index: int) -> "Envoy":
        return self._modules(normalize_index(index, len(self), "layer", "num_layers"))

    def __getitem__(self, index: int) -> torch.Tensor:
        return first_tensor(getattr(self._module(index), self._where))

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        module = self._module(index)
        current = getattr(module, self._where)
        tensor = first_tensor(current)
        if not isinstance(value, torch.Tensor):
            raise ShapeError(
                f"{self._name}[{index}] must be set to a torch.Tensor of shape {tuple(tensor.shape)}, "
                f"got {type(value).__name__}."
            )
        if value.shape != tensor.shape:
            raise ShapeError(
                f"{self._name}[{index}] has shape {tuple(tensor.shape)} (batch, seq, hidden) but the "
                f"value written has shape {tuple(value.shape)}; write a tensor of the same shape "
                f"(slice and edit the value you read, e.g. `h = model.{self._name}[{index}].clone(); "
                f"h[:, -1] += v; model.{self._name}[{index}] = h`)."
            )
        if isinstance(current, tuple) and self._where == "output":
            value = (value, *current[1:])
        setattr(module, self._where, value)
