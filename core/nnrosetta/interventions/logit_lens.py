"""Logit lens: what each layer's residual stream would predict if it were the last.

The hidden states of every layer are gathered in one trace and projected all
at once afterwards, through the adapter's own final projection
(`model.project_on_vocab`), so families with soft-capping or scaling are right
and the last layer equals the model's own ``next_token_probs``. The trace stops
once the last wanted layer has run: the model's own norm and unembedding of
every position would be work the lens throws away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .inputs import Layers, Positions, Prompts, encode, layer_list, position_list, prompt_list

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def logit_lens(
    model: "StandardizedTransformer",
    prompts: Prompts,
    positions: Positions = -1,
    layers: Layers = None,
    remote: bool = False,
) -> torch.Tensor:
    """Next-token probabilities read from each layer's output.

    Args:
        model: the model.
        prompts: a prompt or a list of prompts (left-padded together).
        positions: an int gives (batch, layers, vocab) at that position (default the
            last token); a list gives (batch, layers, len(positions), vocab); None gives
            every position of the padded batch.
        layers: layers to read (default all), returned in forward order.
        remote: passed to nnsight's trace.
    """
    prompts = prompt_list(prompts)
    layer_ids = layer_list(model, layers)
    encoding = encode(model, prompts)
    columns = position_list(positions, encoding["input_ids"].shape[1])
    hidden = _layer_states(model, encoding, layer_ids, columns, remote)
    with torch.no_grad():
        probs = model.project_on_vocab(hidden).softmax(dim=-1)
    return probs[:, :, 0] if isinstance(positions, int) else probs


def _layer_states(
    model: "StandardizedTransformer", encoding: dict, layers: list[int], columns: list[int], remote: bool
) -> torch.Tensor:
    """``layers_output[l][:, columns]`` of each layer (in forward order), (batch, layers, columns, hidden)."""
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(encoding, remote=remote) as tracer:
        for layer in layers:
            saved.append(model.layers_output[layer][:, columns].save())
        tracer.stop()
    return torch.stack(saved, dim=1)
