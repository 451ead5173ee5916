"""Checking and encoding what the methods are given, before any forward pass runs.

Every method validates its prompts, layers and positions here first, so a bad
call fails in milliseconds with a message naming the argument, instead of after
(or in the middle of) a forward pass on a large model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import torch

from ..accessors import normalize_index
from ..errors import InvalidInputError, LayerIndexError

if TYPE_CHECKING:
    from ..model import StandardizedTransformer

Prompts = Union[str, Sequence[str]]
Layers = Union[int, Sequence[int], None]
Positions = Union[int, Sequence[int], None]

#: Standard activation names a component argument may take, as in ``model.<component>_output``.
COMPONENTS = ("layers", "attentions", "mlps")


def prompt_list(prompts: Prompts, argument: str = "prompts") -> list[str]:
    """``prompts`` as a non-empty list of non-empty strings."""
    items = [prompts] if isinstance(prompts, str) else list(prompts) if prompts is not None else []
    if not items:
        raise InvalidInputError(
            f"`{argument}` is empty; pass a prompt string or a non-empty list of prompt strings."
        )
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidInputError(
                f"`{argument}[{index}]` must be a string, got {type(item).__name__}; "
                f"pass prompts as text (the method tokenizes them with the model's tokenizer)."
            )
    return items


def encode(model: "StandardizedTransformer", prompts: list[str], argument: str = "prompts") -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids`` and ``attention_mask`` for ``prompts``, refusing empty ones."""
    encoding = model.tokenizer(prompts, return_tensors="pt", padding=True)
    lengths = encoding["attention_mask"].sum(dim=-1)
    for index, length in enumerate(lengths.tolist()):
        if length == 0:
            raise InvalidInputError(
                f"`{argument}[{index}]` ({prompts[index]!r}) tokenizes to no tokens; "
                f"pass a prompt with some text in it."
            )
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}


def layer_list(model: "StandardizedTransformer", layers: Layers, argument: str = "layers") -> list[int]:
    """Layer indices in forward order: None means every layer; negatives count from the end."""
    if layers is None:
        return list(range(model.num_layers))
    items = [layers] if isinstance(layers, int) else list(layers)
    if not items:
        raise LayerIndexError(
            f"`{argument}` is empty; pass a layer index, a list of them, or None for every layer "
            f"(the model has num_layers={model.num_layers})."
        )
    return sorted({normalize_index(item, model.num_layers, "layer", "num_layers") for item in items})


def position_list(positions: Positions, sequence_length: int, argument: str = "positions") -> list[int]:
    """Token positions in the padded sequence: None means all; negatives count from the end."""
    if positions is None:
        return list(range(sequence_length))
    items = [positions] if isinstance(positions, int) else list(positions)
    if not items:
        raise InvalidInputError(
            f"`{argument}` is empty; pass a position, a list of them, or None for every position."
        )
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not -sequence_length <= item < sequence_length:
            raise LayerIndexError(
                f"`{argument}` holds {item!r}, but the (padded) prompts are {sequence_length} tokens long; "
                f"use positions 0..{sequence_length - 1} (or -1 for the last token)."
            )
    return [item % sequence_length for item in items]


def component_name(component: str) -> str:
    """The accessor prefix for ``component`` (``layers``, ``attentions`` or ``mlps``)."""
    if component not in COMPONENTS:
        raise InvalidInputError(
            f"component={component!r} is not one of {', '.join(COMPONENTS)}; it names the activation "
            f"patched, as in model.<component>_output[layer]."
        )
    return component
