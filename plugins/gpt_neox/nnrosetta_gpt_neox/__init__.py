"""nnrosetta plugin for GPT-NeoX (Pythia, GPT-NeoX-20B) and GPT-NeoX-Japanese.

Both keep their blocks at ``<base>.layers``, each with ``attention`` and ``mlp``,
the final norm at ``<base>.final_layer_norm`` and the embedding at
``<base>.embed_in``. What a rename map alone would get wrong:

- The fused ``query_key_value`` projection is laid out per head (for each head its
  query, key and value side by side), not as three blocks: the heads are split
  with ``fused_layout="per_head"``.
- GPT-NeoX with ``use_parallel_residual`` (the default, every Pythia) adds the
  attention and the MLP, both computed from the layer input, in one sum:
  ``mlps_input[i]`` is ``post_attention_layernorm(layers_input[i])``.
- Rotary embedding covers only ``partial_rotary_factor`` of each head (Pythia:
  0.25); queries and keys are read before it.

GPT-NeoX-Japanese computes attention in its own ``_attn(query, key, value, mask)``
method: its probabilities, and per-head values with ``_attn`` as the attention call
(``call_arguments=(0, 1, 2, 3)``), are served.
"""

from __future__ import annotations

from nnrosetta import (
    Adapter,
    AttentionSpec,
    Called,
    ConfigKeys,
    HeadsSpec,
    Inside,
    LayerTensor,
    Residual,
    Variant,
    conventions,
    hookimpl,
)

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("gpt_neox", "gpt_neox_japanese")

RENAME = {
    "gpt_neox.embed_in": "embed_tokens",
    "gpt_neox.layers": "layers",
    "gpt_neox.final_layer_norm": "ln_final",
    "attention": "self_attn",
}

#: ``query_key_value``'s output, viewed as (batch, seq, heads, 3, head_dim), holds each
#: head's query, key and value side by side; the core splits it that way.
HEADS = HeadsSpec(
    output_projection="dense",
    attention_call=conventions.ATTENTION_CALL,
    fused_projection="query_key_value",
    fused_layout="per_head",
)

#: Sizes shared by both types: four heads of 16, so partial rotary leaves some dimensions unrotated.
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 128}

#: Pythia-shaped: parallel residual, rotary on a quarter of each head (the default), biases.
PYTHIA_TINY = {
    "intermediate_size": 128,
    "use_parallel_residual": True,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
}

JAPANESE_RENAME = {
    "gpt_neox.embed_in": None,
    "gpt_neox.layers": None,
    "gpt_neox.final_layer_norm": None,
    "gpt_neox_japanese.embed_in": "embed_tokens",
    "gpt_neox_japanese.layers": "layers",
    "gpt_neox_japanese.final_layer_norm": "ln_final",
    "embed_out": "lm_head",
}

#: The probabilities ``_attn`` multiplies the values by: its dropout module's output.
JAPANESE_ATTENTION = AttentionSpec(probabilities=Inside(Called("self._attn"), Called("self.attention_dropout")))

#: The same per-head fused ``query_key_value``; the attention call is the family's own
#: ``self._attn(query, key, value, attention_mask)``, whose scaling is 1/√head_size (the default).
JAPANESE_HEADS = HeadsSpec(
    output_projection="dense",
    attention_call=Called("self._attn"),
    fused_projection="query_key_value",
    fused_layout="per_head",
    call_arguments=(0, 1, 2, 3),
)

#: The last layer's attention returns its output projection's bias (`dense_bias`, None on the other
#: layers) apart from its output, and the layer adds it with the attention's output.
JAPANESE_RESIDUAL = Residual(kind="sequential", attention_terms=(LayerTensor("attention.dense_bias"),))

GPT_NEOX = Adapter(
    name="gpt_neox",
    model_types=MODEL_TYPES,
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    attention=conventions.ATTENTION,
    heads=HEADS,
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    variants={
        "gpt_neox": Variant(tiny_config=PYTHIA_TINY),
        "gpt_neox_japanese": Variant(
            rename=JAPANESE_RENAME,
            attention=JAPANESE_ATTENTION,
            heads=JAPANESE_HEADS,
            residual=JAPANESE_RESIDUAL,
            tiny_config={
                "intermediate_multiple_size": 2,
                "tie_word_embeddings": True,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
            },
            notes="sequential residual; the last layer adds its attention's dense_bias with attentions_output "
            "(the attention returns it apart); attention probabilities and per-head values through its own _attn",
        ),
    },
    description=(
        "GPT-NeoX / Pythia and GPT-NeoX-Japanese: <base>.layers[i].{attention,mlp}, final_layer_norm, embed_in; "
        "per-head fused query_key_value, parallel residual, partial rotary."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT_NEOX)
