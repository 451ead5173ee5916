"""Steering vectors by difference of means, for `model.steer`.

The mean last-token residual state of prompts showing a behaviour minus that of
prompts that do not is a direction that, added back with `model.steer`, pushes
the model towards the behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .hidden import layer_outputs
from ..accessors import normalize_index
from .inputs import Prompts, encode, position_list, prompt_list
from ..remote import as_one_job

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def steering_vector(
    model: "StandardizedTransformer",
    positive_prompts: Prompts,
    negative_prompts: Prompts,
    layer: int,
    position: int = -1,
    remote: bool = False,
) -> torch.Tensor:
    """Mean ``layers_output[layer][:, position]`` of the positive prompts minus that of the negative ones.

    Each set is run as its own batch (so the two need not have the same size);
    ``position`` indexes the left-padded batch, -1 being every prompt's last token.
    Returns a (hidden_size,) tensor to pass to `model.steer(layer, vector, factor)`.
    """
    layer_index = normalize_index(layer, model.num_layers, "layer", "num_layers")
    encodings = []
    for prompts, argument in ((positive_prompts, "positive_prompts"), (negative_prompts, "negative_prompts")):
        encoding = encode(model, prompt_list(prompts, argument), argument)
        position_list(position, encoding["input_ids"].shape[1], "position")
        encodings.append(encoding)
    if remote:  # both sets' runs go as one request
        return as_one_job(model, remote, steering_vector, positive_prompts, negative_prompts, layer, position=position)
    means = [
        layer_outputs(model, encoding, [layer_index], [position % encoding["input_ids"].shape[1]], remote=remote)
        .mean(dim=0)
        .reshape(-1)
        for encoding in encodings
    ]
    return means[0] - means[1]
