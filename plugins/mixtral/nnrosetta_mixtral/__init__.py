"""nnrosetta plugin for mixture-of-experts decoders built like Mixtral.

In transformers 5 these types share one MoE design: the layer's ``mlp`` is a
sparse block holding a router at ``mlp.gate`` that returns
``(logits, weights, indices)`` and a fused experts module at ``mlp.experts``
that routes each token with those weights and indices. The rest of the module
tree is Llama's (``model.layers``, ``model.norm``, ``model.embed_tokens``), so
logits are exactly ``lm_head(norm(h))``.

Three adapters, because the families differ in data the core needs:
- ``mixtral``: always renormalises the k chosen weights;
- ``olmoe``: renormalises only when ``config.norm_topk_prob`` says so;
- ``qwen2_moe``: the same, plus an always-on shared expert at ``mlp.shared_expert``
  (gated by a sigmoid inside the block), exposed as ``shared_experts_output[i]``.
"""

from __future__ import annotations

from nnrosetta import Adapter, AttentionSpec, HeadLabels, HeadsSpec, MoESpec, hookimpl

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}

#: Shared shape of every tiny config: 2 layers, 4 experts, 2 per token.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
    "num_experts_per_tok": 2,
}


#: Eager attention's probabilities: the output of the dropout (the identity in eval mode)
#: inside the attention function the forward calls at ``attention_interface_1``.
ATTENTION = AttentionSpec(probabilities=("attention_interface_1", "nn_functional_dropout_0"))

#: Per-head projections before rotary: olmoe and flex_olmo assign them once more, after
#: reshaping their (normalised) flat projections into heads.
HEAD_LABELS = HeadLabels(queries="query_states_0", keys="key_states_0", values="value_states_0")
HEAD_LABELS_AFTER_RESHAPE = HeadLabels(queries="query_states_1", keys="key_states_1", values="value_states_1")
RESHAPING_TYPES = ("olmoe", "flex_olmo")

HEADS = HeadsSpec(
    labels=lambda config: HEAD_LABELS_AFTER_RESHAPE if config.model_type in RESHAPING_TYPES else HEAD_LABELS,
    output_projection="o_proj",
    attention_call="attention_interface_1",
)

MIXTRAL = Adapter(
    name="mixtral",
    model_types=("mixtral",),
    rename=RENAME,
    attention=ATTENTION,
    heads=HEADS,
    moe=MoESpec(num_experts_key="num_experts", normalize_top_k=True),
    tiny_configs={"mixtral": {**TINY, "num_local_experts": 4}},
    description="Mixtral MoE: mlp.gate -> (logits, weights, indices), fused mlp.experts; top-k always renormalised.",
)

#: Types with Mixtral's block whose top-k renormalisation is a config switch.
OLMOE_TYPES = ("olmoe", "qwen3_moe", "flex_olmo")

OLMOE = Adapter(
    name="olmoe",
    model_types=OLMOE_TYPES,
    rename=RENAME,
    attention=ATTENTION,
    heads=HEADS,
    moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob"),
    tiny_configs={
        "olmoe": {**TINY, "num_experts": 4, "norm_topk_prob": False},
        "qwen3_moe": {**TINY, "num_experts": 4, "moe_intermediate_size": 24, "norm_topk_prob": True},
        "flex_olmo": {**TINY, "num_experts": 4, "norm_topk_prob": False},
    },
    description="OLMoE-style MoE (olmoe, qwen3_moe, flex_olmo): Mixtral's block, renormalisation per config.norm_topk_prob.",
)

QWEN2_MOE = Adapter(
    name="qwen2_moe",
    model_types=("qwen2_moe",),
    rename=RENAME,
    attention=ATTENTION,
    heads=HEADS,
    moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob", shared_experts="shared_expert"),
    tiny_configs={
        "qwen2_moe": {
            **TINY,
            "num_experts": 4,
            "moe_intermediate_size": 24,
            "shared_expert_intermediate_size": 40,
            "norm_topk_prob": False,
        }
    },
    description="Qwen2-MoE: routed experts plus a sigmoid-gated shared expert (shared_experts_output[i]).",
)


@hookimpl
def register_adapters(register) -> None:
    register(MIXTRAL)
    register(OLMOE)
    register(QWEN2_MOE)
