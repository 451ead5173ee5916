"""nnrosetta plugin for linear-attention hybrids: delta nets or lightning attention beside softmax attention.

Kimi Linear, Bailing-hybrid and MiniMax keep every layer's token mixer at ``self_attn``
whatever it is: a Kimi delta attention, a Bailing delta attention or a MiniMax lightning
attention on ``"linear_attention"`` layers, a softmax attention on ``"full_attention"``
ones. Serving every ``self_attn`` as attention would make "attention probabilities" mean
something else, so the kinds are read from ``config.layer_types``: on linear layers
``mixers_*[i]`` serve the mixer and every attention accessor is refused with the layer's kind.

- ``kimi_linear``, ``bailing_hybrid``: softmax layers are multi-head latent attention
  (probabilities served, no per-head queries/keys: they are compressed); MoE blocks route like
  DeepSeek-V3 (sigmoid scores, a bias for the choice, group-limited top-k, routed_scaling_factor)
  beside an always-on shared expert, served through the MoE interface on the sparse layers;
- ``minimax``: the residual stream is normed at each layer's entry and rescaled by
  alpha/beta factors (post-norm form); Mixtral-style MoE on every layer;
- ``olmo_hybrid``: gated delta nets at ``linear_attn`` (pre-norm layers) beside OLMo-2 style
  post-normed attention layers (a sandwich residual on the attention kind).
"""

from __future__ import annotations

from nnrosetta import Adapter, MoESpec, Residual, Variant, conventions, hookimpl
from nnrosetta.moe_declarations import Routing
from nnrosetta.layer_kinds import ATTENTION, LINEAR_ATTENTION, LayerKinds, from_config

NNROSETTA_CONTRACT = 2

LAYER_TYPES = {"full_attention": ATTENTION, "linear_attention": LINEAR_ATTENTION}
#: Every mixer at ``self_attn``; which kind it is comes from ``layer_types`` alone.
SAME_NAME_MIXERS = LayerKinds(kinds=from_config("layer_types", LAYER_TYPES), mixers={LINEAR_ATTENTION: "self_attn"})

TINY = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 8,
    "layer_types": ["linear_attention", "full_attention", "linear_attention", "full_attention"],
    "max_position_embeddings": 128,
}
#: Multi-head latent attention and DeepSeek-style MoE sizes (Kimi Linear, Bailing-hybrid).
LATENT = {
    "kv_lora_rank": 8, "q_lora_rank": None, "qk_rope_head_dim": 4, "v_head_dim": 8, "qk_nope_head_dim": 4,
    "num_local_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "n_group": 1, "topk_group": 1,
}

#: Kimi Linear's and Bailing-hybrid's router: DeepSeek-V3's (sigmoid scores plus a bias for the choice,
#: group-limited top-k, renormalised by config, times routed_scaling_factor) and an always-on shared expert.
GROUPED_SIGMOID_MOE = MoESpec(
    num_experts_key="num_local_experts",
    normalize_top_k="norm_topk_prob",
    top_k_scale_key="routed_scaling_factor",
    shared_experts="shared_experts",
    routing=Routing(scores="sigmoid", score_bias="gate.e_score_correction_bias", groups=("n_group", "topk_group"),
                    group_score="top2_sum"),
)

#: The latent softmax layers' query/key head size is qk_nope + qk_rope, as their forward adds them; the
#: config's head_dim is another number (64 against 192 in the released configs).
LATENT_SIZES = {"head_dim": conventions.latent_qk_head_dim}

LINEAR_HYBRID = Adapter(
    name="linear_hybrid",
    model_types=("kimi_linear", "bailing_hybrid", "minimax", "olmo_hybrid"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
    layer_kinds=SAME_NAME_MIXERS,
    attention=conventions.ATTENTION,
    tiny_config=TINY,
    variants={
        "kimi_linear": Variant(
            moe=GROUPED_SIGMOID_MOE,
            config_keys=LATENT_SIZES,
            tiny_config={**LATENT, "linear_head_dim": 8, "linear_num_heads": 4, "n_group": 2, "topk_group": 1,
                         "routed_scaling_factor": 2.5},
            notes="Kimi delta attention and latent softmax attention, both at self_attn",
        ),
        "bailing_hybrid": Variant(
            moe=GROUPED_SIGMOID_MOE,
            config_keys=LATENT_SIZES,
            tiny_config={**LATENT, "first_k_dense_replace": 1, "num_mtp_layers": 0, "n_group": 2, "topk_group": 1,
                         "routed_scaling_factor": 2.5},
            notes="Bailing delta attention and latent softmax attention, both at self_attn",
        ),
        "minimax": Variant(
            heads=conventions.HEADS,
            moe=MoESpec(num_experts_key="num_local_experts", normalize_top_k=True),
            residual=Residual(kind="post_norm"),
            tiny_config={
                "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2,
                "full_attn_alpha_factor": 1.5, "full_attn_beta_factor": 0.7, "linear_attn_alpha_factor": 1.3,
                "linear_attn_beta_factor": 0.9, "mlp_alpha_factor": 1.2, "mlp_beta_factor": 0.8,
            },
            notes="lightning and softmax attention at self_attn; normed, alpha/beta-scaled residual; MoE",
        ),
        "olmo_hybrid": Variant(
            heads=conventions.HEADS,
            layer_kinds=LayerKinds(
                kinds=from_config("layer_types", LAYER_TYPES),
                mixers={LINEAR_ATTENTION: "linear_attn"},
                residuals={ATTENTION: Residual(kind="sandwich", attention_post_norm="post_attention_layernorm",
                                               mlp_post_norm="post_feedforward_layernorm")},
            ),
            tiny_config={"num_key_value_heads": 2, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                         "linear_key_head_dim": 8, "linear_value_head_dim": 8},
            notes="gated delta nets at linear_attn (pre-norm) and post-normed attention layers",
        ),
    },
    description="Linear-attention hybrids: kinds from layer_types, the mixer of each kind named honestly.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LINEAR_HYBRID)
