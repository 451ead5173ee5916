"""nnrosetta plugin for MPT: ``transformer.blocks[i].{attn,ffn}``, ``transformer.wte``, ``transformer.norm_f``.

What a rename map alone gets wrong:

- The FFN adds the residual itself: ``MptMLP.forward(h, residual)`` returns
  ``down_proj(act(up_proj(h))) + residual``, so the module's output is the residual
  stream, not what the MLP adds. The standard ``mlp`` is the span ``ffn.up_proj`` ...
  ``ffn.down_proj``: its input is ``norm_2``'s output, its output what is added.
- Attention biases each score with ALiBi (``position_bias``, built for ``max_seq_len``
  key positions) and computes softmax attention in its own forward, with no
  transformers attention-function call: the probabilities are the output of its
  ``nn.functional.dropout`` (the identity in eval mode), which is what
  ``output_attentions`` returns. Per-head values are the forward's own
  ``query_states``/``key_states``/``value_states`` (`HEADS`).
"""

from __future__ import annotations

from nnrosetta import Adapter, Assigned, AttentionSpec, Called, ConfigKeys, HeadsSpec, Residual, Span, hookimpl

NNROSETTA_CONTRACT = 2

#: Scores are ``torch.matmul(query_states, key_states.transpose(-1, -2))``: the per-head
#: tensors are the forward's own, read before that first matmul (after ``clip_qkv``'s clamp).
#: No attention call (ALiBi and softmax written by hand): no rotated values nor recomputed patterns.
SCORES = Called("torch.matmul")
HEADS = HeadsSpec(
    output_projection="out_proj",
    attention_call=None,
    queries=Assigned("query_states", before=SCORES),
    keys=Assigned("key_states", before=SCORES),
    values=Assigned("value_states", before=SCORES),
)

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.blocks": "layers",
    "transformer.norm_f": "ln_final",
    "attn": "self_attn",
}

#: MPT's defaults shrunk: ALiBi (alibi_bias_max 8), no biases, LayerNorms without bias, 4x FFN.
TINY = {"d_model": 32, "n_heads": 4, "n_layers": 2, "max_seq_len": 128, "expansion_ratio": 4}

MPT = Adapter(
    name="mpt",
    model_types=("mpt",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    spans={"mlp": Span("ffn.up_proj", "ffn.down_proj")},
    attention=AttentionSpec(probabilities=Called("nn.functional.dropout")),
    heads=HEADS,
    residual=Residual(kind="sequential"),
    tiny_config=TINY,
    description=(
        "MPT: transformer.blocks[i].attn, mlp = span ffn.up_proj...ffn.down_proj (the FFN adds the residual "
        "itself), transformer.norm_f; ALiBi attention probabilities and per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(MPT)
