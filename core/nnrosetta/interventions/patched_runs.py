"""Many patched runs of one batch of prompts, stacked so they share forward passes.

Activation patching and patchscopes both run the same prompts many times, each
time replacing one activation with another value. Each run occupies its own
block of rows in a larger batch, so ``batch_size`` runs cost one forward pass
instead of ``batch_size``; ``batch_size`` trades memory for passes.

A patch at layer L changes nothing before L, so a pass whose patches all sit at
layer L or later skips layers 0..L-1: they are replaced by the unpatched run's
layer L-1 output, computed once in a pass of the same size, so every value the
pass computes is bit-identical to running every layer. (The logits are computed
at every position: projecting the last one alone changes the matrix shapes, and
with them the rounding, against a plain forward.)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


#: Skipping costs two extra passes (read the unpatched outputs, verify one skip): it must save more.
SKIP_BREAK_EVEN_PASSES = 2


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
    reuse_unpatched: bool = True,
) -> torch.Tensor:
    """Last-position logits of each run, (runs, rows, vocab); a run with no patch is the plain forward.

    ``where`` is "output" (patch ``<component>_output``) or "input" (``<component>_input``).
    ``reuse_unpatched=False`` runs every layer of every pass (the same numbers, more work).
    """
    per_pass = runs_per_pass(batch_size, len(runs))
    chunks = [runs[start : start + per_pass] for start in range(0, len(runs), per_pass)]
    prefixes = None
    if reuse_unpatched and not remote and worth_skipping(chunks, per_pass, model.num_layers):
        prefixes = UnpatchedPrefixes(model, encoding, per_pass)
    outputs = [_patched_pass(model, encoding, component, where, chunk, remote, prefixes) for chunk in chunks]
    return torch.cat(outputs)


def worth_skipping(chunks: list[list[list[Patch]]], per_pass: int, num_layers: int) -> bool:
    """Whether the layers skipped outweigh the two extra passes that make skipping exact.

    Counted in layer runs: a full pass of ``per_pass`` runs is ``num_layers * per_pass``;
    only full-sized passes skip (their reused outputs come from a pass of their size).
    """
    saved = sum(first_patched_layer(c, num_layers) * len(c) for c in chunks if len(c) == per_pass)
    return saved > SKIP_BREAK_EVEN_PASSES * num_layers * per_pass


def first_patched_layer(runs: list[list[Patch]], num_layers: int) -> int:
    """The lowest layer any of ``runs`` patches (``num_layers`` when none patches anything)."""
    return min((patch.layer for run in runs for patch in run), default=num_layers)


def _stacked(encoding: dict[str, torch.Tensor], copies: int) -> dict[str, torch.Tensor]:
    return {name: value.repeat(copies, *([1] * (value.dim() - 1))) for name, value in encoding.items()}


def _patched_pass(
    model: "StandardizedTransformer",
    encoding: dict[str, torch.Tensor],
    component: str,
    where: str,
    chunk: list[list[Patch]],
    remote: bool,
    prefixes: Optional["UnpatchedPrefixes"],
) -> torch.Tensor:
    """One forward pass of ``chunk``'s runs stacked, each patched in its own block of rows."""
    rows = encoding["input_ids"].shape[0]
    by_layer: dict[int, list[tuple[int, Patch]]] = defaultdict(list)
    for offset, run in enumerate(chunk):
        for patch in run:
            by_layer[patch.layer].append((offset, patch))
    start = first_patched_layer(chunk, model.num_layers)
    replacement = prefixes.replacement(start, len(chunk)) if prefixes is not None else None
    accessor = getattr(model, f"{component}_{where}")
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(_stacked(encoding, len(chunk)), remote=remote):
        if replacement is not None:
            model.skip_layers(0, start - 1, skip_with=replacement)
        for layer in sorted(by_layer):
            hidden = accessor[layer].clone()
            for offset, patch in by_layer[layer]:
                block = torch.arange(rows, device=hidden.device) + offset * rows
                hidden[block, patch.positions.to(hidden.device)] = patch.values.to(hidden.device, hidden.dtype)
            accessor[layer] = hidden
        saved.append(model.logits[:, -1].save())
    return saved[0].reshape(len(chunk), rows, -1)


class UnpatchedPrefixes:
    """The unpatched run's layer outputs, for passes that skip the layers before their first patch.

    They are read from one pass of the unpatched prompts stacked ``copies`` times (the
    size of the passes that use them), so layer L's input is the very tensor running
    layers 0..L-1 would give. Before any pass relies on them, one unpatched pass that
    skips is compared with the full one, bit for bit: a family whose layers share more
    than the hidden state (a cache, a value residual) then runs every layer.
    """

    def __init__(self, model: "StandardizedTransformer", encoding: dict[str, torch.Tensor], copies: int) -> None:
        self.model, self.encoding, self.copies = model, encoding, copies
        self.rows = int(encoding["input_ids"].shape[0])
        self.outputs: Optional[list[torch.Tensor]] = None
        self.exact: Optional[bool] = None

    def replacement(self, start: int, copies: int) -> Optional[torch.Tensor]:
        """What layers 0..start-1 of a pass of ``copies`` runs are replaced by, or None to run them."""
        if start == 0 or copies != self.copies or self.exact is False:
            return None
        if self.exact is None:
            self.exact = self._read_and_verify(start)
            if not self.exact:
                return None
        return self._stacked_output(start - 1)

    def _stacked_output(self, layer: int) -> torch.Tensor:
        block = self.outputs[layer]
        return block.repeat(self.copies, *([1] * (block.dim() - 1)))

    def _read_and_verify(self, start: int) -> bool:
        model, stacked = self.model, _stacked(self.encoding, self.copies)
        saved: list[torch.Tensor] = []
        with torch.no_grad(), model.trace(stacked):
            for layer in range(model.num_layers):
                saved.append(model.layers_output[layer][: self.rows].save())
            full = model.logits[:, -1].save()
        blocks = full.reshape(self.copies, self.rows, -1)
        if not bool((blocks == blocks[:1]).all()):  # one block stands for all only if all are equal
            return False
        self.outputs = saved
        with torch.no_grad(), model.trace(stacked):
            model.skip_layers(0, start - 1, skip_with=self._stacked_output(start - 1))
            skipped = model.logits[:, -1].save()
        return bool(torch.equal(skipped, full))
