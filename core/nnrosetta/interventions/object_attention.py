"""The object attention lens: what a target prompt predicts when one of its tokens is seen as a source's.

For each start layer ``i``, the target prompts are run with the *input of the
attention* of layers ``i .. i + num_patches - 1`` replaced, at the target token
``attn_idx_patch``, by the source prompt's last-token attention input at the same
layer. The residual stream of that token is untouched: only what the other
tokens read from it through attention (its keys and values) comes from the
source. The next-token probabilities at the targets' last token, one row per
start layer, show from which depth the "object" the source describes is taken up.
Every start layer is one run; ``batch_size`` runs share a forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError
from .hidden import layer_outputs
from .inputs import Prompts, encode, prompt_list
from .patched_runs import Patch, patched_last_logits, runs_per_pass
from .target_prompt import TargetPromptBatch
from ..remote import as_one_job

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def patch_object_attn_lens(
    model: "StandardizedTransformer",
    source_prompts: Prompts,
    target_prompts: Prompts,
    attn_idx_patch: int,
    num_patches: int = 5,
    batch_size: Optional[int] = None,
    remote: bool = False,
) -> torch.Tensor:
    """(targets, layers, vocab) next-token probabilities of the targets, one row per start layer.

    Args:
        source_prompts: one source per target prompt, or one for all of them.
        target_prompts: the prompts run and read at their last token.
        attn_idx_patch: the patched token, indexed in each target prompt's own tokens
            (negative from its end), whatever left padding the batch adds.
        num_patches: how many consecutive layers, from the start layer on, are patched
            (fewer at the last layers).
        batch_size: runs (start layers) per forward pass of the targets (default all).
    """
    targets = prompt_list(target_prompts, "target_prompts")
    sources = prompt_list(source_prompts, "source_prompts")
    if len(sources) not in (1, len(targets)):
        raise InvalidInputError(
            f"{len(sources)} source prompts were given for {len(targets)} target prompts; give one source "
            f"(used for every target) or one per target."
        )
    if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 1:
        raise InvalidInputError(f"num_patches={num_patches!r} must be a positive int (layers patched per run).")
    if isinstance(attn_idx_patch, bool) or not isinstance(attn_idx_patch, int):
        raise InvalidInputError(f"attn_idx_patch={attn_idx_patch!r} must be an int token index.")
    target_encoding, positions = TargetPromptBatch.from_prompts(targets, attn_idx_patch).encode(model)
    source_encoding = encode(model, sources, "source_prompts")
    runs_per_pass(batch_size, model.num_layers)
    if remote:  # the source run and the patched passes go as one request
        return as_one_job(
            model, remote, patch_object_attn_lens, source_prompts, target_prompts, attn_idx_patch,
            num_patches=num_patches, batch_size=batch_size,
        )
    layers = list(range(model.num_layers))
    width = source_encoding["input_ids"].shape[1]
    states = layer_outputs(model, source_encoding, layers, [width - 1], remote, "attentions_input")[:, :, 0]
    states = states.expand(len(targets), -1, -1)
    runs = [
        [Patch(layer, positions, states[:, layer]) for layer in range(start, min(start + num_patches, len(layers)))]
        for start in layers
    ]
    logits = patched_last_logits(model, target_encoding, "attentions", runs, batch_size, remote, where="input")
    return logits.softmax(dim=-1).transpose(0, 1)
