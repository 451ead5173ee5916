"""nnrosetta plugin for mixture-of-experts decoders built like Mixtral.

In transformers 5 these types share one MoE design: the layer's ``mlp`` is a
sparse block holding a router at ``mlp.gate`` that returns
``(logits, weights, indices)`` and a fused experts module at ``mlp.experts``
that routes each token with those weights and indices. The rest of the module
tree is Llama's (``model.layers``, ``model.norm``, ``model.embed_tokens``), so
logits are exactly ``lm_head(norm(h))``.

One family declaration; each type's variant says what differs:
- ``mixtral``: always renormalises the k chosen weights;
- ``olmoe``, ``qwen3_moe``, ``flex_olmo``: renormalise only when ``config.norm_topk_prob``
  says so;
- ``qwen2_moe``: the same, plus an always-on shared expert at ``mlp.shared_expert``
  (gated by a sigmoid inside the block), exposed as ``shared_experts_output[i]``.
"""

from __future__ import annotations

from nnrosetta import Adapter, MoESpec, Residual, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

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


#: Types with Mixtral's block whose top-k renormalisation is a config switch.
SWITCHED = MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob")

MIXTRAL = Adapter(
    name="mixtral",
    model_types=("mixtral", "olmoe", "qwen3_moe", "flex_olmo", "qwen2_moe"),
    rename=RENAME,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    moe=MoESpec(num_experts_key="num_local_experts", normalize_top_k=True),
    tiny_config=TINY,
    variants={
        "mixtral": Variant(tiny_config={"num_local_experts": 4}),
        "olmoe": Variant(moe=SWITCHED, tiny_config={"num_experts": 4, "norm_topk_prob": False}),
        "qwen3_moe": Variant(
            moe=SWITCHED, tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "norm_topk_prob": True}
        ),
        "flex_olmo": Variant(
            moe=SWITCHED,
            # OLMo 2 style: each sublayer's output is normalised before it is added.
            residual=Residual(kind="sandwich", attention_post_norm="post_attention_layernorm",
                              mlp_post_norm="post_feedforward_layernorm"),
            tiny_config={"num_experts": 4, "norm_topk_prob": False},
        ),
        "qwen2_moe": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob", shared_experts="shared_expert"),
            tiny_config={
                "num_experts": 4,
                "moe_intermediate_size": 24,
                "shared_expert_intermediate_size": 40,
                "norm_topk_prob": False,
            },
            notes="routed experts plus a sigmoid-gated shared expert (shared_experts_output[i])",
        ),
    },
    description="Mixtral-style MoE: mlp.gate -> (logits, weights, indices), fused mlp.experts.",
)


@hookimpl
def register_adapters(register) -> None:
    register(MIXTRAL)
