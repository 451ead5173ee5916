"""The logit-lens heatmap: for each layer and token, the top next-token guess and its probability."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..interventions.inputs import Layers, layer_list, prompt_list
from ..interventions.logit_lens import logit_lens
from .heatmap import Heatmap, labels

if TYPE_CHECKING:
    from ..model import StandardizedTransformer


def logit_lens_heatmap(
    model: "StandardizedTransformer", prompt: str, layers: Layers = None, remote: bool = False
) -> Heatmap:
    """Run the logit lens on every position of one prompt and lay it out as layers x tokens.

    Each cell shows the most probable next token read from that layer at that
    position; its colour is that token's probability.
    """
    (text,) = prompt_list(prompt, "prompt")
    layer_ids = layer_list(model, layers)
    probs = logit_lens(model, [text], positions=None, layers=layer_ids, remote=remote)[0]
    top_probs, top_ids = probs.max(dim=-1)  # (layers, positions)
    input_ids = model.tokenizer(text, return_tensors="pt")["input_ids"][0]
    return Heatmap(
        values=top_probs,
        row_labels=tuple(f"layer {layer}" for layer in layer_ids),
        column_labels=labels([token_text(model.tokenizer, i) for i in input_ids]),
        cell_text=tuple(labels([token_text(model.tokenizer, i) for i in row]) for row in top_ids),
        title=f"Logit lens: {text!r}",
        colorbar_title="probability of top token",
    )


def token_text(tokenizer, token_id: int) -> str:
    """The decoded text of one token, or its vocabulary entry when it is a partial UTF-8 sequence."""
    text = tokenizer.decode([int(token_id)])
    if "\ufffd" in text:
        return tokenizer.convert_ids_to_tokens(int(token_id))
    return text
