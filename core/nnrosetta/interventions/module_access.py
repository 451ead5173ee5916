"""Standard names on any nnsight language model, as functions.

Research code is often written against nnsight's own ``LanguageModel`` with
Llama-style module paths (``model.model.layers[i]``, ``model.model.norm``,
``model.lm_head``). These functions read the same values from such a model and
from a `StandardizedTransformer`; on the latter they go through its accessors,
so every family is right (GPT-2's tuple outputs, Gemma 2's soft-capped final
projection), and a helper written once runs on both. Values are read inside a
trace, in forward order, as with the accessors themselves.
"""

from __future__ import annotations

from typing import Any

import torch

from ..accessors import normalize_index
from ..errors import RenamingError
from ..model import StandardizedTransformer

#: Where a plain (un-standardized) model keeps each standard module: the Llama layout.
LLAMA_PATHS = {
    "embed_tokens": "model.embed_tokens",
    "layers": "model.layers",
    "ln_final": "model.norm",
    "lm_head": "lm_head",
}
#: Per-layer standard modules of the Llama layout.
LLAMA_LAYER_MODULES = ("self_attn", "mlp")


def first_tensor(value: Any) -> Any:
    """The hidden-state tensor of a module value: the value itself, or a tuple's first entry."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _standardized(model: Any) -> bool:
    return isinstance(model, StandardizedTransformer)


def _walk(envoy: Any, path: str, model: Any) -> Any:
    for part in path.split("."):
        try:
            envoy = getattr(envoy, part)
        except AttributeError:
            raise RenamingError(
                f"{type(model).__name__} has no `{path}` (the Llama layout these helpers read on a plain "
                f"nnsight model); wrap the model in nnrosetta.StandardizedTransformer, which serves the "
                f"standard names for every installed family."
            ) from None
    return envoy


def _plain(model: Any, name: str) -> Any:
    return _walk(model, LLAMA_PATHS[name], model)


def get_layers(model: Any) -> Any:
    """The decoder layers (an indexable envoy list)."""
    return model.layers if _standardized(model) else _plain(model, "layers")


def get_num_layers(model: Any) -> int:
    """Number of decoder layers."""
    return len(get_layers(model))


def get_layer(model: Any, layer: int) -> Any:
    """The envoy of decoder layer ``layer`` (negative counts from the end)."""
    layers = get_layers(model)
    return layers[normalize_index(layer, len(layers), "layer", "num_layers")]


def _sublayer(model: Any, layer: int, name: str) -> Any:
    return _walk(get_layer(model, layer), name, model)


def get_layer_input(model: Any, layer: int) -> torch.Tensor:
    """Inside a trace: the residual stream entering ``layer``, (batch, seq, hidden)."""
    if _standardized(model):
        return model.layers_input[layer]
    return first_tensor(get_layer(model, layer).input)


def get_layer_output(model: Any, layer: int) -> torch.Tensor:
    """Inside a trace: the residual stream leaving ``layer``, (batch, seq, hidden)."""
    if _standardized(model):
        return model.layers_output[layer]
    return first_tensor(get_layer(model, layer).output)


def get_attention(model: Any, layer: int) -> Any:
    """The attention module of ``layer``."""
    return model.attentions[layer] if _standardized(model) else _sublayer(model, layer, "self_attn")


def get_attention_output(model: Any, layer: int) -> torch.Tensor:
    """Inside a trace: what the attention of ``layer`` adds to the residual stream, (batch, seq, hidden)."""
    if _standardized(model):
        return model.attentions_output[layer]
    return first_tensor(get_attention(model, layer).output)


def get_mlp(model: Any, layer: int) -> Any:
    """The MLP (or mixture-of-experts block) of ``layer``."""
    return model.mlps[layer] if _standardized(model) else _sublayer(model, layer, "mlp")


def get_mlp_output(model: Any, layer: int) -> torch.Tensor:
    """Inside a trace: what the MLP of ``layer`` adds to the residual stream, (batch, seq, hidden)."""
    if _standardized(model):
        return model.mlps_output[layer]
    return first_tensor(get_mlp(model, layer).output)


def get_token_embeddings(model: Any) -> torch.Tensor:
    """Inside a trace: the embedding module's output, (batch, seq, hidden) (the tensor, not the module)."""
    if _standardized(model):
        return model.token_embeddings
    return _plain(model, "embed_tokens").output


def get_logits(model: Any) -> torch.Tensor:
    """Inside a trace: the output logits, (batch, seq, vocab)."""
    return model.logits if _standardized(model) else model.output.logits


def get_next_token_probs(model: Any) -> torch.Tensor:
    """Inside a trace: softmax of the last position's logits, (batch, vocab)."""
    return get_logits(model)[:, -1, :].softmax(dim=-1)


def get_unembed_norm(model: Any) -> Any:
    """The final norm applied before the unembedding (``ln_final``)."""
    return model.ln_final if _standardized(model) else _plain(model, "ln_final")


def get_unembed(model: Any) -> Any:
    """The unembedding (``lm_head``)."""
    return model.lm_head if _standardized(model) else _plain(model, "lm_head")


def project_on_vocab(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from a residual-stream state.

    On a `StandardizedTransformer`, through the family's own final projection
    (soft-capping included); on a plain model, ``lm_head(norm(hidden))``, which is
    all the Llama layout says.
    """
    if _standardized(model):
        return model.project_on_vocab(hidden)
    return get_unembed(model)(get_unembed_norm(model)(hidden))
