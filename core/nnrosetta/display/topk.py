"""The top-k heatmap: for each layer, the k most probable next tokens and their probabilities."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from ..errors import ShapeError
from .heatmap import Heatmap, labels
from .lens import token_text


def topk_tokens_heatmap(
    probs: torch.Tensor,
    tokenizer: Any,
    k: int = 4,
    title: str = "",
    use_token_ids: bool = False,
    row_labels: Optional[Sequence[str]] = None,
) -> Heatmap:
    """Lay out (layers, vocab) probabilities (a logit lens of one prompt) as layers x ranks.

    Cell (layer, r) shows the r-th most probable token (its text, or its id with
    ``use_token_ids``); its colour is that token's probability.
    """
    values = torch.as_tensor(probs).detach().float().cpu()
    if values.dim() != 2:
        raise ShapeError(
            f"topk_tokens_heatmap takes (layers, vocab) probabilities of one prompt, got shape "
            f"{tuple(values.shape)}; index the prompt first (probs[i])."
        )
    if not 1 <= k <= values.shape[-1]:
        raise ShapeError(f"k={k} must be between 1 and the vocabulary size {values.shape[-1]}.")
    top_probs, top_ids = values.topk(k, dim=-1)
    texts = [[str(int(i)) if use_token_ids else token_text(tokenizer, int(i)) for i in row] for row in top_ids]
    return Heatmap(
        values=top_probs,
        row_labels=tuple(row_labels) if row_labels is not None else tuple(f"layer {i}" for i in range(len(values))),
        column_labels=tuple(f"top {rank + 1}" for rank in range(k)),
        cell_text=tuple(tuple(row) if use_token_ids else labels(row) for row in texts),
        title=title,
        colorbar_title="probability",
        column_title="rank",
    )
