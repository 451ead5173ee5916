"""nnrosetta plugin for Qwen3-Next and Qwen3.5: gated delta nets interleaved with softmax attention.

Each layer is ``h + mixer(norm(h))`` then ``h + mlp(norm(h))``, where the mixer is either
a gated delta net at ``linear_attn`` (``config.layer_types`` says ``"linear_attention"``)
or a gated softmax attention at ``self_attn`` (``"full_attention"``). The layer kinds are
read from ``layer_types``: attention accessors, probabilities and heads exist on the
full-attention layers only, ``mixers_*[i]`` on every layer.

- ``qwen3_next``, ``qwen3_5_moe``, ``qwen3_5_moe_text``: the MLP is a sparse MoE block with a
  sigmoid-gated shared expert (``mlp.gate`` -> (logits, weights, indices), ``mlp.experts``);
  Qwen3-Next renormalises the chosen weights when ``config.norm_topk_prob``, Qwen3.5-MoE always;
- ``qwen3_5``, ``qwen3_5_text``: a dense MLP. ``qwen3_5``/``qwen3_5_moe`` are the multimodal
  configs; their causal LM is the text model (``text_config``).
"""

from __future__ import annotations

from nnrosetta import Adapter, MoESpec, Variant, conventions, hookimpl
from nnrosetta.layer_kinds import ATTENTION, LINEAR_ATTENTION, SLIDING_ATTENTION, LayerKinds, from_config

NNROSETTA_CONTRACT = 2

GATED_DELTA_HYBRID = LayerKinds(
    kinds=from_config(
        "layer_types",
        {"full_attention": ATTENTION, "sliding_attention": SLIDING_ATTENTION, "linear_attention": LINEAR_ATTENTION},
    ),
    mixers={LINEAR_ATTENTION: "linear_attn"},
)

TEXT = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "linear_num_value_heads": 4,
    "linear_num_key_heads": 2,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "linear_conv_kernel_dim": 4,
    "layer_types": ["linear_attention", "full_attention", "linear_attention", "full_attention"],
    "max_position_embeddings": 128,
}
MOE = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 16,
       "decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True}
ROUTED_WITH_SHARED = MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob", shared_experts="shared_expert")
#: Qwen3.5-MoE's router renormalises the chosen weights always; its config has no norm_topk_prob.
ALWAYS_RENORMALISED = MoESpec(num_experts_key="num_experts", normalize_top_k=True, shared_experts="shared_expert")
QWEN3_5_MOE = {key: value for key, value in MOE.items() if key != "norm_topk_prob"}


def _multimodal(text: dict) -> dict:
    return {"text_config": {**text, "vocab_size": 384, "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2,
                            "tie_word_embeddings": False}}


QWEN3_NEXT = Adapter(
    name="qwen3_next",
    model_types=("qwen3_next", "qwen3_5_text", "qwen3_5", "qwen3_5_moe_text", "qwen3_5_moe", "lara_mini"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
    layer_kinds=GATED_DELTA_HYBRID,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    moe=ROUTED_WITH_SHARED,
    tiny_config=TEXT,
    variants={
        "qwen3_next": Variant(tiny_config=MOE),
        "lara_mini": Variant(
            tiny_config={**MOE, "layer_types": ["linear_attention", "sliding_attention", "linear_attention",
                                                "full_attention"], "sliding_window": 4},
            notes="Qwen3-Next tree; ungated shared expert, float32 router; full-attention layers NoPE",
        ),
        "qwen3_5_moe_text": Variant(moe=ALWAYS_RENORMALISED, tiny_config=QWEN3_5_MOE,
                                    notes="the router always renormalises the chosen weights"),
        "qwen3_5_text": Variant(moe=None, notes="dense MLP"),
        "qwen3_5": Variant(moe=None, tiny_config=_multimodal(TEXT), notes="multimodal config: the text model's causal LM"),
        "qwen3_5_moe": Variant(moe=ALWAYS_RENORMALISED, tiny_config=_multimodal({**TEXT, **QWEN3_5_MOE}),
                               notes="multimodal config: the text model's causal LM; the router always renormalises"),
    },
    description="Gated delta nets (linear_attn) interleaved with gated softmax attention (self_attn), by layer_types.",
)


@hookimpl
def register_adapters(register) -> None:
    register(QWEN3_NEXT)
