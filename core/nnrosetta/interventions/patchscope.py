"""Patchscopes: decode a hidden state by patching it into another prompt.

The last-token hidden state of each source prompt (or a latent you supply) at a
layer replaces the hidden state of a target prompt's chosen token at the same
layer; what the target then predicts describes the patched state. All layers of
the lens share forward passes (``batch_size`` layers per pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

from ..errors import InvalidInputError, ShapeError
from .hidden import layer_outputs
from .inputs import Layers, Prompts, encode, layer_list, prompt_list
from .patched_runs import Patch, patched_last_logits, runs_per_pass
from .target_prompt import TargetPrompt, TargetPromptBatch

if TYPE_CHECKING:
    from ..model import StandardizedTransformer

Targets = Union[TargetPrompt, Sequence[TargetPrompt], TargetPromptBatch, None]


def _latents(
    model: "StandardizedTransformer",
    source_prompts: Optional[Prompts],
    latents: Optional[torch.Tensor],
    layers: list[int],
) -> tuple[Optional[dict], Optional[torch.Tensor], int]:
    """Checked latents (sources, layers, hidden), or the encoded sources to read them from."""
    if (source_prompts is None) == (latents is None):
        raise InvalidInputError(
            "give exactly one of `source_prompts` (their last-token hidden states are patched) "
            "or `latents` (a tensor of hidden states to patch)."
        )
    if latents is None:
        sources = prompt_list(source_prompts, "source_prompts")
        return encode(model, sources, "source_prompts"), None, len(sources)
    if not isinstance(latents, torch.Tensor) or latents.dim() not in (2, 3) or latents.shape[-1] != model.hidden_size:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ShapeError(
            f"latents must be a tensor of shape (sources, hidden_size={model.hidden_size}) or "
            f"(sources, {len(layers)} layers, {model.hidden_size}), got {shape}."
        )
    if latents.dim() == 3 and latents.shape[1] != len(layers):
        raise ShapeError(
            f"latents has {latents.shape[1]} layers in its second dimension but {len(layers)} layers "
            f"are patched ({layers}); pass one latent per layer or a (sources, hidden) tensor for all."
        )
    if latents.shape[0] == 0:
        raise InvalidInputError("latents holds no source (its first dimension is 0).")
    expanded = latents if latents.dim() == 3 else latents.unsqueeze(1).expand(-1, len(layers), -1)
    return None, expanded, latents.shape[0]


def _source_latents(model, encoding, layers, remote) -> torch.Tensor:
    width = encoding["input_ids"].shape[1]
    return layer_outputs(model, encoding, layers, [width - 1], remote=remote)[:, :, 0]


def patchscope_lens(
    model: "StandardizedTransformer",
    source_prompts: Optional[Prompts] = None,
    target_patch_prompts: Targets = None,
    layers: Layers = None,
    latents: Optional[torch.Tensor] = None,
    batch_size: Optional[int] = None,
    remote: bool = False,
) -> torch.Tensor:
    """Next-token probabilities of the target prompts with each layer's latent patched in.

    Args:
        source_prompts: prompts whose last-token hidden state (``layers_output``) is patched.
        target_patch_prompts: a `TargetPrompt` (repeated for every source), one per source,
            or a `TargetPromptBatch`; default `repeat_prompt()`.
        layers: layers to patch at (default all), in forward order.
        latents: instead of sources, hidden states (sources, hidden) or (sources, layers, hidden).
        batch_size: layers sharing one forward pass of the targets (default all).
    Returns:
        (sources, layers, vocab) probabilities at each target's last token.
    """
    layer_ids = layer_list(model, layers)
    source_encoding, checked, count = _latents(model, source_prompts, latents, layer_ids)
    targets = TargetPromptBatch.coerce(target_patch_prompts, count)
    target_encoding, positions = targets.encode(model)
    runs_per_pass(batch_size, len(layer_ids))
    if checked is None:
        checked = _source_latents(model, source_encoding, layer_ids, remote)
    runs = [[Patch(layer, positions, checked[:, index])] for index, layer in enumerate(layer_ids)]
    logits = patched_last_logits(model, target_encoding, "layers", runs, batch_size, remote)
    return logits.softmax(dim=-1).transpose(0, 1)


def patchscope_generate(
    model: "StandardizedTransformer",
    source_prompts: Optional[Prompts] = None,
    target_patch_prompts: Targets = None,
    layer: int = -1,
    latents: Optional[torch.Tensor] = None,
    max_new_tokens: int = 20,
    remote: bool = False,
    **generate_kwargs,
) -> list[str]:
    """Greedy continuations of the target prompts with one layer's latent patched in.

    The latent replaces the target token's state at ``layer`` in the prompt pass only;
    later tokens see it through the key-value cache. Returns the new text per source.
    """
    layer_ids = layer_list(model, layer, "layer")
    source_encoding, checked, count = _latents(model, source_prompts, latents, layer_ids)
    targets = TargetPromptBatch.coerce(target_patch_prompts, count)
    target_encoding, positions = targets.encode(model)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InvalidInputError(f"max_new_tokens={max_new_tokens!r} must be a positive int.")
    if checked is None:
        checked = _source_latents(model, source_encoding, layer_ids, remote)
    values = checked[:, 0]
    options = {"do_sample": False, "pad_token_id": model.tokenizer.pad_token_id, **generate_kwargs}
    results: list[torch.Tensor] = []
    with torch.no_grad(), model.generate(target_encoding, max_new_tokens=max_new_tokens, remote=remote, **options) as tracer:
        hidden = model.layers_output[layer_ids[0]].clone()
        hidden[torch.arange(count, device=hidden.device), positions.to(hidden.device)] = values.to(hidden.device, hidden.dtype)
        model.layers_output[layer_ids[0]] = hidden
        results.append(tracer.result.save())
    new_tokens = results[0][:, target_encoding["input_ids"].shape[1] :]
    return model.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
