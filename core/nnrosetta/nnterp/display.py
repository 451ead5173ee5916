"""nnterp's ``display``: the top-k tokens per layer as a plotly figure, and prompts as a DataFrame.

Drawn with nnrosetta's `topk_tokens_heatmap` (plotly, the ``display`` extra) and
`prompt_rows` (a DataFrame needs pandas, which nnrosetta does not install).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from ..display.extras import require
from ..display.prompt_table import prompt_rows
from ..display.topk import topk_tokens_heatmap
from ..errors import InvalidInputError, MissingDependencyError, ShapeError
from ..prompts import Prompt

__all__ = ["plot_topk_tokens", "prompts_to_df"]


def plot_topk_tokens(
    next_token_probs: torch.Tensor,
    tokenizer: Any,
    k: int = 4,
    title: Optional[str] = None,
    dark_mode: bool = True,
    use_token_ids: bool = False,
    file: Union[str, Path, None] = None,
    save_html: bool = True,
    height: Optional[int] = None,
    width: Optional[int] = None,
):
    """A plotly Figure of the ``k`` most probable tokens at each layer: one heatmap per prompt.

    ``next_token_probs`` is (layers, vocab) or (prompts, layers, vocab), e.g. from
    ``logit_lens``. With ``file``, the figure is also written as self-contained HTML
    (``save_html``) or, for one prompt, as a PNG through matplotlib.
    """
    probs = torch.as_tensor(next_token_probs).detach()
    if probs.dim() == 2:
        probs = probs.unsqueeze(0)
    if probs.dim() != 3:
        raise ShapeError(
            f"next_token_probs must be (layers, vocab) or (prompts, layers, vocab), got {tuple(probs.shape)}."
        )
    heatmaps = [topk_tokens_heatmap(p, tokenizer, k, title or "", use_token_ids) for p in probs]
    subplots = require("plotly.subplots")
    figure = subplots.make_subplots(rows=len(heatmaps), cols=1, subplot_titles=[f"prompt {i}" for i in range(len(heatmaps))] if len(heatmaps) > 1 else None)
    for row, heatmap in enumerate(heatmaps, start=1):
        single = heatmap.to_plotly()
        for trace in single.data:
            figure.add_trace(trace, row=row, col=1)
        figure.update_xaxes(single.layout.xaxis, row=row, col=1)
        figure.update_yaxes(single.layout.yaxis, row=row, col=1)
    layers = probs.shape[1]
    figure.update_layout(
        title=title or f"Top {k} tokens per layer",
        template="plotly_dark" if dark_mode else "plotly_white",
        height=height or max(350, (160 + 36 * layers) * len(heatmaps)),
        width=width or max(500, 160 + 70 * k),
    )
    if file is not None:
        if save_html:
            figure.write_html(str(file), include_plotlyjs=True, full_html=True)
        elif len(heatmaps) == 1:
            heatmaps[0].to_png(file)
        else:
            raise InvalidInputError(
                f"a PNG holds one prompt's heatmap and {len(heatmaps)} were given; pass save_html=True "
                f"or plot one prompt at a time."
            )
    return figure


def prompts_to_df(prompts: Sequence[Prompt], tokenizer: Optional[Any] = None):
    """A pandas DataFrame of `prompt_rows`: the prompt, then per category its strings and first tokens."""
    rows = prompt_rows(prompts, tokenizer)
    try:
        import pandas
    except ImportError as error:
        raise MissingDependencyError(
            f"prompts_to_df returns a pandas DataFrame, and pandas is not installed ({error}); "
            f"pip install pandas, or use nnrosetta.display.prompt_rows for the same rows as dicts."
        ) from error
    return pandas.DataFrame(rows)
