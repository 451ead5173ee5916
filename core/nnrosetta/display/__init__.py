"""Plots (optional extra ``nnrosetta[display]``: plotly for HTML, matplotlib for PNG).

Nothing here imports plotly or matplotlib until a file is written, so importing
the package works without the extra and fails only with a clear install hint.
"""

from .heatmap import Heatmap
from .lens import logit_lens_heatmap
from .patching import patching_heatmap
from .prompt_table import prompt_rows
from .topk import topk_tokens_heatmap

__all__ = ["Heatmap", "logit_lens_heatmap", "patching_heatmap", "prompt_rows", "topk_tokens_heatmap"]
