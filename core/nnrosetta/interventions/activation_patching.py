"""Activation patching: the effect of restoring one clean activation in a corrupted run.

For every (layer, position) the clean run's activation replaces the corrupted
run's, and the metric of the patched run is compared with the plain corrupted
run. The patched runs are stacked so ``batch_size`` of them share one forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from ..errors import InvalidInputError
from .inputs import Layers, Positions, Prompts
from .metrics import Metric
from .paired_prompts import clean_run, default_metric, pair_prompts
from .patched_runs import Patch, patched_last_logits, runs_per_pass
from ..remote import as_one_job

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def scalar_score(metric: Metric, logits: torch.Tensor, method: str) -> torch.Tensor:
    """``metric(logits)`` as a 0-d tensor, or an error saying what the metric returned instead."""
    value = metric(logits)
    try:
        score = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        score = None
    if score is None or score.numel() != 1 or score.dtype == torch.bool:
        shape = tuple(score.shape) if score is not None else type(value).__name__
        raise InvalidInputError(
            f"{method}: the metric must return one number for the last-token logits of shape "
            f"{tuple(logits.shape)} (prompts, vocab); it returned {shape}. Reduce it to a scalar, e.g. "
            f"`lambda logits: logits[:, token_id].mean()`."
        )
    return score.reshape(())


def activation_patching(
    model: "StandardizedTransformer",
    clean_prompts: Prompts,
    corrupted_prompts: Prompts,
    layers: Layers = None,
    positions: Positions = None,
    component: str = "layers",
    metric: Optional[Metric] = None,
    batch_size: Optional[int] = None,
    remote: bool = False,
) -> torch.Tensor:
    """Effect matrix (layers, positions): metric(patched run) - metric(corrupted run).

    Args:
        clean_prompts, corrupted_prompts: paired prompts of equal token lengths.
        layers: layers to patch (default all), in forward order (the matrix rows).
        positions: token positions of the padded batch (default all; -1 is the last).
        component: "layers", "attentions" or "mlps": which ``<component>_output`` is patched.
        metric: last-token logits (prompts, vocab) -> scalar tensor; default the mean logit
            of the clean run's top token.
        batch_size: patched runs per forward pass (default all in one). Forward passes:
            1 clean + ceil((layers * positions + 1) / batch_size), the +1 being the corrupted run.
            A pass holds batch_size * len(prompts) rows: lower it when that does not fit in memory.
            A pass whose patches start at layer L skips layers 0..L-1 (bit-identical results) when
            that saves more than the 2 extra passes it costs (see `patched_runs`).
    """
    pair = pair_prompts(model, clean_prompts, corrupted_prompts, layers, positions, component, metric)
    runs_per_pass(batch_size, 1)
    if remote:  # the clean run and the patched passes go as one request
        return as_one_job(
            model, remote, activation_patching, clean_prompts, corrupted_prompts, layers=layers, positions=positions,
            component=component, metric=metric, batch_size=batch_size,
        )
    clean_values, clean_logits = clean_run(model, pair, remote=remote)
    metric = metric or default_metric(clean_logits)
    rows = pair.corrupted["input_ids"].shape[0]
    runs: list[list[Patch]] = [[]]  # run 0: the corrupted baseline, unpatched
    for layer, values in zip(pair.layers, clean_values):
        for column, position in enumerate(pair.positions):
            runs.append([Patch(layer, torch.full((rows,), position), values[:, column])])
    logits = patched_last_logits(model, pair.corrupted, pair.component, runs, batch_size, remote)
    with torch.no_grad():
        scores = torch.stack([scalar_score(metric, run, "activation_patching") for run in logits])
    effects = scores[1:] - scores[0]
    return effects.reshape(len(pair.layers), len(pair.positions))
