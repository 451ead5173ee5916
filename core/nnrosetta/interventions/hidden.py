"""Reading the states of many layers in one trace.

Several methods (logit lens, patchscope sources, steering vectors, the object
attention lens) need one accessor of many layers at a few positions. They are
read here in ONE forward pass, sliced to the wanted positions inside the trace
so only those are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def layer_outputs(
    model: "StandardizedTransformer",
    encoding: dict[str, torch.Tensor],
    layers: list[int],
    positions: list[int],
    remote: bool = False,
    accessor: str = "layers_output",
) -> torch.Tensor:
    """``<accessor>[l][:, positions]`` for each layer, as one (batch, layers, positions, hidden) tensor.

    ``layers`` must be in forward order (nnsight reads values as the forward produces them).
    """
    values = getattr(model, accessor)
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(encoding, remote=remote):
        for layer in layers:
            saved.append(values[layer][:, positions].save())
    return torch.stack(saved, dim=1)
