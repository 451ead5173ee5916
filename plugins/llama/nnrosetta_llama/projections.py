"""Final projections of the Llama-tree types whose logits are more than ``lm_head(norm(h))``.

Each repeats the family's ``*ForCausalLM.forward`` between the decoder's last
hidden state and the logits, with the same operations in the same order, so
``project_on_vocab(layers_output[-1])`` is the model's own logits and a logit
lens sees the distribution the model samples from. The factors are read from the
loaded model's config, never assumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from nnrosetta import StandardizedTransformer


def divided_by_logits_scaling(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Granite (muP): ``lm_head(norm(h)) / config.logits_scaling``."""
    logits = model.lm_head(model.ln_final(hidden))
    return logits / model.config.logits_scaling


def times_logits_scaling(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """HyperCLOVA X (muP): ``lm_head(norm(h)) * config.logits_scaling`` (a multiplier, unlike Granite's)."""
    return model.lm_head(model.ln_final(hidden)) * model.config.logits_scaling


def times_logit_scale(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Cohere: ``lm_head(norm(h)) * config.logit_scale`` (1 when the config sets none)."""
    logits = model.lm_head(model.ln_final(hidden))
    scale = model.config.logit_scale
    return logits * (scale if scale is not None else 1.0)


def hidden_divided_by_width_ratio(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """MiniCPM3: ``lm_head(norm(h) / (hidden_size / dim_model_base))``: the state is scaled before the head."""
    return model.lm_head(model.ln_final(hidden) / model.config.logits_scaling)


def softcapped_through_decoder_norm(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """NanoChat (Gemma 2's head): ``cap * tanh(lm_head(norm(h)) / cap)`` with ``cap = final_logit_softcapping``.

    ``norm`` is the decoder's ``model.norm``, called ad hoc: it also normalises the embeddings before
    layer 0, so it is not served as ``ln_final`` (see the variant).
    """
    logits = model.lm_head(model.model.norm(hidden))
    cap = model.config.final_logit_softcapping
    if cap is not None:
        logits = logits / cap
        logits = logits.tanh()
        logits = logits * cap
    return logits
