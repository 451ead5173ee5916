"""The ModernBERT decoder: a pre-norm causal LM with alternating sliding-window and global layers.

Its tree is a pre-norm decoder's (``model.layers[i].{attn_norm, attn, mlp_norm, mlp}``,
``model.final_norm``), with one twist at the head: HuggingFace's ``lm_head`` is the
prediction-head transform (dense, activation, LayerNorm) and ``decoder`` the
vocabulary projection, and ``forward`` computes ``decoder(lm_head(final_norm(h)))``.
nnsight cannot alias ``decoder`` to the standard ``lm_head`` while a native
``lm_head`` child exists, so the standard ``lm_head`` is that transform and
`modernbert_decoder_head` is the final projection. Layer 0 has no attention norm
(an ``Identity``: the embeddings end in a norm already).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnrosetta import Adapter, ConfigKeys, conventions

if TYPE_CHECKING:
    import torch

    from nnrosetta import StandardizedTransformer


def modernbert_decoder_head(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """``decoder(lm_head(final_norm(h)))``, the operations of ``ModernBertDecoderForCausalLM.forward``."""
    return model.decoder(model.lm_head(model.ln_final(hidden)))


#: Two layers, one sliding (window 4 tokens each side of the local span) and one global, so they differ.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "local_attention": 8,
    "layer_types": ["full_attention", "sliding_attention"],
    "cls_token_id": 1,
    "sep_token_id": 2,
}

MODERNBERT_DECODER = Adapter(
    name="modernbert_decoder",
    model_types=("modernbert-decoder",),
    rename={
        "model.embeddings.tok_embeddings": "embed_tokens",
        "model.layers": "layers",
        "model.final_norm": "ln_final",
        "attn": "self_attn",
    },
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    final_projection=modernbert_decoder_head,
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="Wo"),
    tiny_config=TINY,
    description=(
        "ModernBERT decoder: model.layers[i].{attn,mlp}, model.final_norm; lm_head is HF's prediction-head "
        "transform and logits are decoder(lm_head(final_norm(h)))."
    ),
)
