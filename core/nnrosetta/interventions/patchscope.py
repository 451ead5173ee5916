"""Patchscopes: decode a hidden state by patching it into another prompt.

The last-token hidden state of each source prompt (or a latent you supply) at a
layer replaces the hidden state of a target prompt's chosen token at the same
layer; what the target then predicts describes the patched state. All layers of
the lens share forward passes (``batch_size`` layers per pass).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

from ..errors import InvalidInputError, ShapeError
from .hidden import layer_outputs
from ..accessors import normalize_index
from .inputs import Layers, Prompts, encode, layer_list, prompt_list
from .patched_runs import Patch, patched_last_logits, runs_per_pass
from .target_prompt import TargetPrompt, TargetPromptBatch
from ..remote import as_one_job

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
    """Each source's last-token ``layers_output`` at ``layers`` (any order, repeats kept): (sources, layers, hidden)."""
    width = encoding["input_ids"].shape[1]
    read = sorted(set(layers))
    values = layer_outputs(model, encoding, read, [width - 1], remote=remote)[:, :, 0]
    return values[:, [read.index(layer) for layer in layers]]


def _layers_as_given(model: "StandardizedTransformer", layers: Layers, argument: str = "layers") -> list[int]:
    """Layer indices in the order given, repeats kept (None: every layer); each checked and made non-negative."""
    if layers is None:
        return list(range(model.num_layers))
    items = [layers] if isinstance(layers, int) else list(layers)
    if not items:
        layer_list(model, items, argument)  # raises the standard "empty" error
    return [normalize_index(item, model.num_layers, "layer", "num_layers") for item in items]


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
        layers: layers to patch at (default all), in forward order (sorted, each once), as
            every method of this package returns layers.
        latents: instead of sources, hidden states (sources, hidden) or (sources, layers, hidden).
        batch_size: layers sharing one forward pass of the targets (default all).
    Returns:
        (sources, layers, vocab) probabilities at each target's last token.
    """
    return patchscope_lens_in_order(
        model, source_prompts, target_patch_prompts, layer_list(model, layers), latents, batch_size, remote
    )


def patchscope_lens_in_order(
    model: "StandardizedTransformer",
    source_prompts: Optional[Prompts] = None,
    target_patch_prompts: Targets = None,
    layers: Layers = None,
    latents: Optional[torch.Tensor] = None,
    batch_size: Optional[int] = None,
    remote: bool = False,
) -> torch.Tensor:
    """`patchscope_lens` with one row per entry of ``layers``, in the order given, repeats kept.

    ``latents`` of shape (sources, layers, hidden) give one latent per entry of ``layers``.
    """
    layer_ids = _layers_as_given(model, layers)
    source_encoding, checked, count = _latents(model, source_prompts, latents, layer_ids)
    targets = TargetPromptBatch.coerce(target_patch_prompts, count)
    target_encoding, positions = targets.encode(model)
    runs_per_pass(batch_size, len(layer_ids))
    if remote:  # the source run and the patched passes go as one request
        return as_one_job(
            model, remote, patchscope_lens_in_order, source_prompts, target_patch_prompts, layers=layers,
            latents=latents, batch_size=batch_size,
        )
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
    (layer_index,) = layer_list(model, layer, "layer")
    (ids,) = patchscope_generate_ids(
        model, source_prompts, target_patch_prompts, [layer_index], latents, max_new_tokens, None, remote,
        **generate_kwargs,
    ).values()
    width = TargetPromptBatch.coerce(target_patch_prompts, ids.shape[0]).encode(model)[0]["input_ids"].shape[1]
    return model.tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True)


def patchscope_generate_ids(
    model: "StandardizedTransformer",
    source_prompts: Optional[Prompts] = None,
    target_patch_prompts: Targets = None,
    layers: Layers = None,
    latents: Optional[torch.Tensor] = None,
    max_new_tokens: int = 20,
    batch_size: Optional[int] = None,
    remote: bool = False,
    **generate_kwargs,
) -> dict[int, torch.Tensor]:
    """Per layer (keys as given), the greedy generation of the targets with that layer's latent patched in.

    Each value is the (sources, target tokens + new tokens) output of ``generate``, the
    left-padded target prompt included. ``batch_size`` layers share one ``generate``
    (default all), each in its own block of rows; a row that stops early is padded
    with the pad token up to its block's longest row.
    """
    given = [layers] if isinstance(layers, int) else list(range(model.num_layers)) if layers is None else list(layers)
    layer_ids = _layers_as_given(model, given)
    source_encoding, checked, count = _latents(model, source_prompts, latents, layer_ids)
    targets = TargetPromptBatch.coerce(target_patch_prompts, count)
    target_encoding, positions = targets.encode(model)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InvalidInputError(f"max_new_tokens={max_new_tokens!r} must be a positive int.")
    per_pass = runs_per_pass(batch_size, len(layer_ids))
    if remote:  # the source run and the generations go as one request
        return as_one_job(
            model, remote, patchscope_generate_ids, source_prompts, target_patch_prompts, layers=layers,
            latents=latents, max_new_tokens=max_new_tokens, batch_size=batch_size, **generate_kwargs,
        )
    if checked is None:
        checked = _source_latents(model, source_encoding, layer_ids, remote)
    options = {"do_sample": False, "pad_token_id": model.tokenizer.pad_token_id, **generate_kwargs}
    generated: dict[int, torch.Tensor] = {}
    for start in range(0, len(layer_ids), per_pass):
        chunk = list(range(start, min(start + per_pass, len(layer_ids))))
        by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for offset, index in enumerate(chunk):
            by_layer[layer_ids[index]].append((offset, index))
        stacked = {name: value.repeat(len(chunk), 1) for name, value in target_encoding.items()}
        results: list[torch.Tensor] = []
        with torch.no_grad(), model.generate(stacked, max_new_tokens=max_new_tokens, remote=remote, **options) as tracer:
            for layer in sorted(by_layer):
                hidden = model.layers_output[layer].clone()
                for offset, index in by_layer[layer]:
                    rows = torch.arange(count, device=hidden.device) + offset * count
                    hidden[rows, positions.to(hidden.device)] = checked[:, index].to(hidden.device, hidden.dtype)
                model.layers_output[layer] = hidden
            results.append(tracer.result.save())
        for offset, index in enumerate(chunk):
            generated[given[index]] = results[0][offset * count : (offset + 1) * count]
    return generated
