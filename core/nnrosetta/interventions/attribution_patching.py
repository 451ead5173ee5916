"""Attribution patching: the first-order (gradient) estimate of activation patching.

One clean forward, one corrupted forward and one backward pass give the whole
(layers, positions) matrix: effect ~ (clean - corrupted activation) . d metric / d activation,
taken at the corrupted run. It is exact where the metric is linear in the
activation, and an approximation elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError
from .activation_patching import scalar_score
from .inputs import Layers, Positions, Prompts
from .metrics import Metric
from .paired_prompts import clean_run, default_metric, pair_prompts
from ..remote import as_one_job

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def attribution_patching(
    model: "StandardizedTransformer",
    clean_prompts: Prompts,
    corrupted_prompts: Prompts,
    layers: Layers = None,
    positions: Positions = None,
    component: str = "layers",
    metric: Optional[Metric] = None,
    remote: bool = False,
) -> torch.Tensor:
    """Estimated effect matrix (layers, positions), with the arguments of `activation_patching`.

    Gradients are taken with ``torch.autograd.grad`` on the activations only, so the
    model's parameters get no ``.grad``; frozen models work too (the token embeddings
    are made to require grad).
    """
    pair = pair_prompts(model, clean_prompts, corrupted_prompts, layers, positions, component, metric)
    if remote:  # the clean and the corrupted run go as one request
        return as_one_job(
            model, remote, attribution_patching, clean_prompts, corrupted_prompts, layers=layers,
            positions=positions, component=component, metric=metric,
        )
    clean_values, clean_logits = clean_run(model, pair, remote=remote)
    metric = metric or default_metric(clean_logits)
    accessor = getattr(model, f"{pair.component}_output")
    activations: list[torch.Tensor] = []
    saved: list[torch.Tensor] = []
    with torch.enable_grad(), model.trace(pair.corrupted, remote=remote):
        embeddings = model.token_embeddings
        if not embeddings.requires_grad:
            model.token_embeddings = embeddings.detach().requires_grad_(True)
        for layer in pair.layers:
            activations.append(accessor[layer])
        last = model.logits[:, -1]
        score = scalar_score(metric, last, "attribution_patching")
        if not score.requires_grad:
            raise InvalidInputError(
                "attribution_patching: the metric's value does not depend differentiably on the logits (it "
                "has no gradient: .item(), argmax, comparisons or a constant break the graph), so no gradient "
                "reaches the activations. Use a differentiable metric, e.g. `lambda logits: logits[:, token_id]"
                ".mean()`, or activation_patching, which needs none."
            )
        gradients = torch.autograd.grad(score, activations, allow_unused=True)
        for activation, gradient in zip(activations, gradients):
            gradient = torch.zeros_like(activation) if gradient is None else gradient
            saved.append(activation[:, pair.positions].detach().save())
            saved.append(gradient[:, pair.positions].save())
    rows = []
    for index, clean in enumerate(clean_values):
        corrupted, gradient = saved[2 * index], saved[2 * index + 1]
        rows.append(((clean - corrupted) * gradient).sum(dim=(0, 2)))
    return torch.stack(rows)
