"""Metrics for patching: functions from last-token logits (prompts, vocab) to one number.

A metric sees the logits of one (patched or plain) run of all prompts, rows in
the order the prompts were given, and returns a scalar tensor. It must be
differentiable for attribution patching.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

Metric = Callable[[torch.Tensor], torch.Tensor]


def token_logit(token_ids: Union[Sequence[int], torch.Tensor]) -> Metric:
    """Mean over prompts of the logit of each prompt's token (``token_ids[i]`` for prompt i)."""
    ids = torch.as_tensor(token_ids, dtype=torch.long)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, ids.to(logits.device)].mean()

    return metric


def logit_difference(
    correct_ids: Union[Sequence[int], torch.Tensor], wrong_ids: Union[Sequence[int], torch.Tensor]
) -> Metric:
    """Mean over prompts of logit(correct token) - logit(wrong token)."""
    correct, wrong = token_logit(correct_ids), token_logit(wrong_ids)
    return lambda logits: correct(logits) - wrong(logits)
