"""Many patched runs of one batch of prompts, stacked so they share forward passes.

Activation patching and patchscopes both run the same prompts many times, each
time replacing one activation with another value. Each run occupies its own
block of rows in a larger batch, so ``batch_size`` runs cost one forward pass
instead of ``batch_size``; ``batch_size`` trades memory for passes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


@dataclass(frozen=True)
class Patch:
    """Replace ``<component>_<where>[layer][row, positions[row]]`` by ``values[row]`` for every prompt row."""

    layer: int
    positions: torch.Tensor  # (rows,) padded token position per prompt row
    values: torch.Tensor  # (rows, hidden)


def runs_per_pass(batch_size: Optional[int], runs: int) -> int:
    """How many runs share one forward pass: ``batch_size`` (checked) or all of them."""
    if batch_size is None:
        return max(runs, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(
            f"batch_size={batch_size!r} must be a positive int (patched runs per forward pass) or None "
            f"for all runs in one pass."
        )
    return batch_size


def patched_last_logits(
    model: "StandardizedTransformer",
    encoding: dict[str, torch.Tensor],
    component: str,
    runs: list[list[Patch]],
    batch_size: Optional[int] = None,
    remote: bool = False,
    where: str = "output",
) -> torch.Tensor:
    """Last-position logits of each run, (runs, rows, vocab); a run with no patch is the plain forward.

    ``where`` is "output" (patch ``<component>_output``) or "input" (``<component>_input``).
    """
    rows = encoding["input_ids"].shape[0]
    per_pass = runs_per_pass(batch_size, len(runs))
    outputs: list[torch.Tensor] = []
    for start in range(0, len(runs), per_pass):
        chunk = runs[start : start + per_pass]
        by_layer: dict[int, list[tuple[int, Patch]]] = defaultdict(list)
        for offset, run in enumerate(chunk):
            for patch in run:
                by_layer[patch.layer].append((offset, patch))
        stacked = {name: value.repeat(len(chunk), 1) for name, value in encoding.items()}
        accessor = getattr(model, f"{component}_{where}")
        saved: list[torch.Tensor] = []
        with torch.no_grad(), model.trace(stacked, remote=remote):
            for layer in sorted(by_layer):
                hidden = accessor[layer].clone()
                for offset, patch in by_layer[layer]:
                    block = torch.arange(rows, device=hidden.device) + offset * rows
                    hidden[block, patch.positions.to(hidden.device)] = patch.values.to(hidden.device, hidden.dtype)
                accessor[layer] = hidden
            saved.append(model.logits[:, -1].save())
        outputs.append(saved[0].reshape(len(chunk), rows, -1))
    return torch.cat(outputs)
