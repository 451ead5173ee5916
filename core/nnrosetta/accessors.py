"""Layer-indexed views over the standard modules and their inputs and outputs.

One generic accessor serves every ``*_input`` / ``*_output`` name: it reads the
module's value inside a trace, unwraps the tuple a family may return to the plain
(batch, seq, hidden) tensor, and on assignment checks the shape and repacks the
tuple the family expects, so user code never sees the family's output format.
A sublayer declared as a `Span` is read at its first module's input and its last
module's output; one the family flattens to (tokens, hidden) is shown as
(batch, seq, hidden). The accessors are class attributes of the model
(`LayerActivations`, `SublayerModules`), so ``layers_output =`` finds them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Iterator, Literal, Optional

import torch

from .errors import AccessorAssignmentError, CapabilityError, LayerIndexError, ShapeError
from .write_checks import check_written

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


def sublayer_site(model: "StandardizedTransformer", layer: int, sublayer: Optional[str], where: str) -> "Envoy":
    """The envoy whose ``input``/``output`` is the standard value: a layer, a sublayer, or a span's end."""
    envoy = model.layers[layer]
    if sublayer is None:
        return envoy
    adapter = model.adapter
    if sublayer in ("mixer", "parallel_mixer") or getattr(adapter, "layer_kinds", None) is not None:
        from .layer_kinds import kind_path  # the layer's kind decides which module serves the sublayer

        path = kind_path(model, layer, sublayer, where)
        if path not in ("self_attn", "mlp"):
            return module_at(envoy, path)
        sublayer = path
    if sublayer in adapter.absent:
        raise CapabilityError(
            f"`{sublayer}` is absent from model type {adapter.model_type!r} (adapter {adapter.name!r}, "
            f"{adapter.plugin or '<explicit>'}): {adapter.absent[sublayer]}. Use `layers_input[i]` / "
            f"`layers_output[i]` instead."
        )
    span = adapter.spans.get(sublayer)
    if span is not None:
        return module_at(envoy, span.start if where == "input" else span.end)
    return getattr(envoy, sublayer)


def module_at(envoy: "Envoy", path: str) -> "Envoy":
    """The envoy at a dotted path below ``envoy``."""
    return functools.reduce(getattr, path.split("."), envoy)


class SpanModule:
    """A standard sublayer made of several modules: input of the first, output of the last."""

    def __init__(self, start: "Envoy", end: "Envoy") -> None:
        self.start = start
        self.end = end

    @property
    def input(self) -> Any:
        return self.start.input

    @input.setter
    def input(self, value: Any) -> None:
        self.start.input = value

    @property
    def output(self) -> Any:
        return self.end.output

    @output.setter
    def output(self, value: Any) -> None:
        self.end.output = value


class ModuleAccessor:
    """``model.attentions``-style view: index i gives the standard module of layer i (or its span)."""

    def __init__(self, model: "StandardizedTransformer", name: str, child: str) -> None:
        self._model = model
        self._name = name
        self._child = child

    def __len__(self) -> int:
        return self._model.num_layers

    def __getitem__(self, index: int) -> Any:
        layer = normalize_index(index, len(self), "layer", "num_layers")
        span = self._model.adapter.spans.get(self._child)
        if span is not None:
            start = sublayer_site(self._model, layer, self._child, "input")
            return SpanModule(start, sublayer_site(self._model, layer, self._child, "output"))
        return sublayer_site(self._model, layer, self._child, "output")

    def __iter__(self) -> Iterator[Any]:
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
        sublayer: Optional[str],
        where: Literal["input", "output"],
    ) -> None:
        self._model = model
        self._name = name
        self._sublayer = sublayer
        self._where = where

    def __len__(self) -> int:
        return self._model.num_layers

    def _site(self, index: int) -> tuple[int, "Envoy"]:
        layer = normalize_index(index, len(self), "layer", "num_layers")
        return layer, sublayer_site(self._model, layer, self._sublayer, self._where)

    def _unflatten(self, layer: int, tensor: Any) -> Any:
        # Some families flatten tokens inside a layer (OPT's MLP sees (batch * seq, hidden)).
        if isinstance(tensor, torch.Tensor) and tensor.dim() == 2 and self._sublayer is not None:
            batch, seq = self._model._layer_shape(layer)
            return tensor.reshape(batch, seq, tensor.shape[-1])
        return tensor

    def __getitem__(self, index: int) -> torch.Tensor:
        layer, site = self._site(index)
        value = self._unflatten(layer, first_tensor(getattr(site, self._where)))
        # The family edits this value in place later in the forward: keep what it is now.
        return value.clone() if self._name in self._model.adapter.mutated_in_place else value

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        layer, site = self._site(index)
        current = getattr(site, self._where)
        raw = first_tensor(current)
        tensor = self._unflatten(layer, raw)
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
        check_written(self._model, f"{self._name}[{index}]", value, tensor)
        if raw.shape != tensor.shape:
            value = value.reshape(raw.shape)
        if isinstance(current, (tuple, list)) and self._where == "output":
            value = type(current)((value, *current[1:]))
        setattr(site, self._where, value)


class LayerActivations:
    """Class attribute serving ``model.<name>[i]``: a layer's or sublayer's input or output."""

    def __init__(self, sublayer: Optional[str], where: Literal["input", "output"]) -> None:
        self.sublayer = sublayer
        self.where = where
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, model: Any, owner: type) -> Any:
        return self if model is None else ActivationAccessor(model, self.name, self.sublayer, self.where)

    def __set__(self, model: Any, value: Any) -> None:
        raise AccessorAssignmentError(
            f"`model.{self.name} = ...` would replace the accessor; assign one layer's value inside a trace: "
            f"`model.{self.name}[i] = tensor`."
        )


class SublayerModules:
    """Class attribute serving ``model.attentions[i]`` / ``model.mlps[i]``: the standard sublayer modules."""

    def __init__(self, child: str) -> None:
        self.child = child
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, model: Any, owner: type) -> Any:
        return self if model is None else ModuleAccessor(model, self.name, self.child)

    def __set__(self, model: Any, value: Any) -> None:
        raise AccessorAssignmentError(f"`model.{self.name}` cannot be replaced; it is the view of each layer's {self.child}.")
