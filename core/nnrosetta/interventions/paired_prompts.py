"""Clean and corrupted prompts for patching: checked to align token for token, and the clean run.

Patching moves an activation from the clean run into the same layer and token
position of the corrupted run, so the two batches must tokenize to the same
shape with the same padding; this is checked before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError
from .inputs import Layers, Positions, Prompts, component_name, encode, layer_list, position_list, prompt_list
from .metrics import Metric, token_logit

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


@dataclass(frozen=True)
class PairedPrompts:
    """Encoded clean and corrupted batches and where to patch (layers, padded positions, component)."""

    clean: dict[str, torch.Tensor]
    corrupted: dict[str, torch.Tensor]
    layers: list[int]
    positions: list[int]
    component: str


def pair_prompts(
    model: "StandardizedTransformer",
    clean_prompts: Prompts,
    corrupted_prompts: Prompts,
    layers: Layers,
    positions: Positions,
    component: str,
    metric: Optional[Metric],
) -> PairedPrompts:
    """Check and encode everything a patching method is given, before any forward pass."""
    clean = prompt_list(clean_prompts, "clean_prompts")
    corrupted = prompt_list(corrupted_prompts, "corrupted_prompts")
    if len(clean) != len(corrupted):
        raise InvalidInputError(
            f"{len(clean)} clean prompts but {len(corrupted)} corrupted prompts; give one corrupted "
            f"prompt per clean prompt (pairs are patched row by row)."
        )
    if metric is not None and not callable(metric):
        raise InvalidInputError(f"metric must be a function of last-token logits, got {type(metric).__name__}.")
    clean_encoding = encode(model, clean, "clean_prompts")
    corrupted_encoding = encode(model, corrupted, "corrupted_prompts")
    clean_lengths = clean_encoding["attention_mask"].sum(-1)
    corrupted_lengths = corrupted_encoding["attention_mask"].sum(-1)
    if not torch.equal(clean_lengths, corrupted_lengths) or clean_encoding["input_ids"].shape != corrupted_encoding["input_ids"].shape:
        raise InvalidInputError(
            f"clean and corrupted prompts must tokenize to the same lengths so positions line up; "
            f"clean token counts are {clean_lengths.tolist()}, corrupted {corrupted_lengths.tolist()}. "
            f"Edit the corrupted prompts (same number of tokens, different content)."
        )
    width = clean_encoding["input_ids"].shape[1]
    return PairedPrompts(
        clean=clean_encoding,
        corrupted=corrupted_encoding,
        layers=layer_list(model, layers),
        positions=position_list(positions, width),
        component=component_name(component),
    )


def clean_run(
    model: "StandardizedTransformer", pair: PairedPrompts, remote: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The clean activations at each patched layer, (batch, positions, hidden), and the clean last-token logits."""
    accessor = getattr(model, f"{pair.component}_output")
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(pair.clean, remote=remote):
        for layer in pair.layers:
            saved.append(accessor[layer][:, pair.positions].save())
        saved.append(model.logits[:, -1].save())
    return saved[:-1], saved[-1]


def default_metric(clean_logits: torch.Tensor) -> Metric:
    """The mean logit of the clean run's top token: how much of the clean answer a patch restores."""
    return token_logit(clean_logits.argmax(dim=-1))
