"""The patching-effect heatmap: layers x positions, effect as a colour centred on zero."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .heatmap import Heatmap, labels


def patching_heatmap(
    effects: torch.Tensor,
    layers: Sequence[int],
    position_labels: Sequence[str],
    title: str = "Activation patching",
    colorbar_title: str = "effect on metric",
    annotate: bool = True,
    precision: Optional[int] = 2,
) -> Heatmap:
    """Lay out an `activation_patching` / `attribution_patching` matrix, one row per layer.

    ``position_labels`` are the tokens of the patched positions (e.g. decoded clean prompt tokens).
    """
    values = torch.as_tensor(effects).detach().float().cpu()
    text = tuple(tuple(f"{v:.{precision}f}" for v in row.tolist()) for row in values) if annotate else None
    return Heatmap(
        values=values,
        row_labels=tuple(f"layer {layer}" for layer in layers),
        column_labels=labels(position_labels),
        cell_text=text,
        title=title,
        colorbar_title=colorbar_title,
        diverging=True,
    )
