"""nnrosetta plugin for DeepSeek-style mixture-of-experts decoders.

These types share DeepSeek V3's MoE block in transformers 5: ``mlp.gate`` returns
``(logits, weights, indices)``, ``mlp.experts`` holds fused ``gate_up_proj`` /
``down_proj`` weights, ``mlp.shared_experts`` is always on, and the first layers
(``first_k_dense_replace`` or ``mlp_layer_types``) are dense MLPs. Routing, as
declared in `nnrosetta.moe_declarations.Routing`:

- sigmoid scores plus ``gate.e_score_correction_bias`` rank the experts, only the
  ``topk_group`` best of ``n_group`` groups (two best scores summed) may be chosen,
  and the chosen sigmoid scores are renormalised (``norm_topk_prob``) and multiplied
  by ``routed_scaling_factor`` (`MoESpec.top_k_scale_key`);
- DeepSeek V2: softmax scores, groups ranked by their best expert when
  ``topk_method="group_limited_greedy"``, never renormalised.

Attention: DeepSeek V2/V3/V3.2, GLM-4.7-Flash (glm4_moe_lite) and GLM-5 (glm_moe_dsa)
use multi-head latent attention: attention probabilities are served, heads are not
(see `MLA_NOTES`). The others have standard grouped-query attention and serve heads.
"""

from __future__ import annotations

import torch

from nnrosetta import Adapter, AttentionSpec, MoESpec, Residual, Variant, conventions, hookimpl
from nnrosetta.moe_declarations import ExpertByHand, Routing

NNROSETTA_CONTRACT = 2

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}

#: Two layers: layer 0 dense, layer 1 routed (8 experts, 2 per token), so dense and MoE layers mix.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "moe_intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
    "n_routed_experts": 8,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "mlp_layer_types": ["dense", "sparse"],
}

#: Group-limited: 8 experts in 4 groups, the 2 best groups open (as DeepSeek V3's 8 and 4).
GROUPED = {"n_group": 4, "topk_group": 2}

#: MLA shrunk: queries/keys of nope 8 + rope 4 per head, values of 8, latents of 8 and 16.
TINY_MLA = {"num_key_value_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 8,
            "qk_rope_head_dim": 4, "head_dim": 4, "v_head_dim": 8}

MLA_NOTES = (
    "multi-head latent attention: heads are not served (queries are split into a rotary and a non-rotary "
    "part, keys are expanded per head from one shared latent and one shared rotary key after rotary, and "
    "values have their own head size v_head_dim); head_dim is the query/key head size qk_head_dim "
    "(nope + rope), over which attention probabilities are computed"
)
MLA = {"heads": None, "config_keys": {"head_dim": conventions.latent_qk_head_dim}}

#: A.X K2's attention widths: q_gate_proj holds, per head, the query (qk_head_dim, the attention call's head
#: size) then a sigmoid output gate (v_head_dim); kv_b_proj, per head, the key's non-rotary part then the value;
#: kv_a_proj_with_mqa the shared latent then the one rotary key.
AXK2_PROJECTIONS = {
    "q_gate_proj": (("num_heads", "head_dim"), ("num_heads", "v_head_dim")),
    "kv_b_proj": (("num_heads", "qk_nope_head_dim"), ("num_heads", "v_head_dim")),
    "kv_a_proj_with_mqa": (("kv_lora_rank",), ("qk_rope_head_dim",)),
}

#: DeepSeek V3's router: sigmoid + score bias, group-limited, renormalised and scaled.
SIGMOID_ROUTING = Routing(scores="sigmoid", score_bias="gate.e_score_correction_bias",
                          groups=("n_group", "topk_group"), group_score="top2_sum")


def _v2_groups(config) -> "tuple[int, int] | None":
    """DeepSeek V2 limits the choice to groups only with topk_method="group_limited_greedy"."""
    if getattr(config, "topk_method", "greedy") != "group_limited_greedy":
        return None
    return int(config.n_group), int(config.topk_group)


V3_MOE = MoESpec(
    num_experts_key="n_routed_experts",
    normalize_top_k="norm_topk_prob",
    top_k_scale_key="routed_scaling_factor",
    shared_experts="shared_experts",
    routing=SIGMOID_ROUTING,
)

V2_MOE = MoESpec(
    num_experts_key="n_routed_experts",
    normalize_top_k=False,
    top_k_scale_key="routed_scaling_factor",
    shared_experts="shared_experts",
    routing=Routing(scores="softmax", groups=_v2_groups, group_score="max"),
)

def minimax_clamped_swiglu(experts, gate, up):
    """MiniMax-M3's expert GLU: gate clamped above, up both ways, (up + 1) * gate * sigmoid(alpha * gate)."""
    gate = gate.clamp(max=experts.swiglu_limit)
    up = up.clamp(min=-experts.swiglu_limit, max=experts.swiglu_limit)
    return (up + 1.0) * (gate * torch.sigmoid(gate * experts.swiglu_alpha))


#: dots3: MLA with q/kv latents, layer 0 DSA-indexed (the indexer keeps 4 keys per query) and dense, layer 1
#: sliding (window 4) and routed, with its own MLA latent ranks (per_layer_config); DeepSeek V3's grouped
#: routing. The released SWA layers also have half the DSA layers' heads, and so does the tiny model: each layer's
#: head count is read from its own config (`model.layer_sizes(i)`).
TINY_DOTS3 = {
    **TINY_MLA, **GROUPED, "head_dim": 12, "routed_scaling_factor": 2.5, "shared_experts_intermediate_size": 16,
    "layer_types": ["indexed_attention", "sliding_attention"], "sliding_window": 4,
    "index_topk": 4, "index_head_dim": 8, "index_n_heads": 2,
    "swa_num_attention_heads": 2, "swa_num_key_value_heads": 2, "swa_q_lora_rank": 8, "swa_kv_lora_rank": 12,
    "swa_head_dim": 12, "swa_qk_nope_head_dim": 8, "swa_v_head_dim": 8,
}
#: Each layer's head count and sizes are its own per_layer_config entry's.
DOTS3_SIZES = {"per_layer": "per_layer_config"}
DOTS3_NOTES = (
    MLA_NOTES + "; latents rescaled by sqrt(hidden / rank), the shared rotary key normed; DSA-indexed layers mask "
    "all but index_topk keys per query, sliding layers have their own MLA sizes (per_layer_config); a "
    "per-head sigmoid gate (g_proj) scales each head's output before o_proj"
)


def minimax_sparse_layers(config) -> "str | None":
    """MiniMax-M3's block-sparse layers break causality on the left-padded batches nnsight runs."""
    sparse = [i for i, kind in enumerate(getattr(config, "layer_types", None) or ()) if kind == "minimax_m3_sparse"]
    if not sparse:
        return None
    return (
        f"layers {sparse} are minimax_m3_sparse: their lightning indexer anchors key blocks at absolute cache "
        "slots but the query's blocks and causality at position_ids, so in a left-padded batch (what nnsight "
        "and generate() pass) a real query's own keys can fall in unselected blocks; a row with no key left "
        "is softmaxed over every key, later ones included (HuggingFace's eager attention is then not causal, "
        "and padded rows differ from the prompt alone). No standard attention_probabilities meaning holds "
        "there; load a config without minimax_m3_sparse layers, or run unpadded batches on the plain model"
    )


DEEPSEEK = Adapter(
    name="deepseek",
    model_types=(
        "deepseek_v2", "deepseek_v3", "deepseek_v32", "glm4_moe", "glm4_moe_lite", "glm_moe_dsa",
        "dots1", "exaone_moe", "solar_open", "mimo_v2_flash", "sarvam_moe", "laguna", "longcat_flash",
        "sarvam_mla", "kolibri1", "axk1", "axk2", "deepseek_v4", "hy_v4",
        "minimax_m3_vl_text", "dots3_note", "dots3_note_text",
    ),
    rename=RENAME,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    moe=V3_MOE,
    tiny_config=TINY,
    variants={
        "deepseek_v3": Variant(**MLA, tiny_config={**TINY_MLA, **GROUPED, "routed_scaling_factor": 2.5},
                               notes=MLA_NOTES),
        "deepseek_v32": Variant(**MLA, tiny_config={**TINY_MLA, **GROUPED, "routed_scaling_factor": 2.5,
                                                    "mlp_layer_types": ["dense", "sparse"]},
                                notes=MLA_NOTES + "; DeepSeek sparse attention's indexer masks keys per query"),
        "deepseek_v2": Variant(
            **MLA,
            moe=V2_MOE,
            tiny_config={**TINY_MLA, **GROUPED, "topk_method": "group_limited_greedy",
                         "routed_scaling_factor": 1.5, "n_shared_experts": 2},
            notes=MLA_NOTES + "; softmax routing, group-limited when topk_method='group_limited_greedy'",
        ),
        "glm4_moe": Variant(tiny_config={"routed_scaling_factor": 1.8, "partial_rotary_factor": 0.5}),
        "glm4_moe_lite": Variant(**MLA, tiny_config={**TINY_MLA, "routed_scaling_factor": 1.8}, notes=MLA_NOTES),
        "glm_moe_dsa": Variant(**MLA, tiny_config={**TINY_MLA, "routed_scaling_factor": 2.5}, notes=MLA_NOTES),
        "dots1": Variant(tiny_config={"norm_topk_prob": False}),
        "exaone_moe": Variant(moe=MoESpec(**{**V3_MOE.__dict__, "num_experts_key": "num_experts"}),
                              tiny_config={"num_experts": 8, "num_shared_experts": 1, "routed_scaling_factor": 2.5}),
        "solar_open": Variant(),
        "mimo_v2_flash": Variant(
            heads=None,
            attention=AttentionSpec(probabilities=conventions.ATTENTION.probabilities, sinks="sinks"),
            notes="heads not served: values have their own head size v_head_dim and the sliding layers add a "
            "per-head sink logit to every softmax; attention sinks (self_attn.sinks, None on the full-attention "
            "layers): attention_probabilities[i] is HF eager's, without the sink column, so a sliding layer's "
            "rows sum to 1 minus the sink's share and a full layer's to 1",
        ),
        "sarvam_moe": Variant(tiny_config={"routed_scaling_factor": 2.5, "use_qk_norm": True},
                              notes="GLM-4.5 MoE's classes (Glm4MoeForCausalLM) under its own model type"),
        "laguna": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k=True, shared_experts="shared_experts",
                        routed_output_scale_key="moe_routed_scaling_factor",
                        routing=Routing(scores="sigmoid", score_bias="gate.e_score_correction_bias")),
            tiny_config={"num_experts": 8, "shared_expert_intermediate_size": 16, "moe_routed_scaling_factor": 2.0,
                         "moe_router_logit_softcapping": 5.0, "num_attention_heads_per_layer": [4, 4],
                         "layer_types": ["full_attention", "sliding_attention"], "sliding_window": 4},
            notes="sigmoid routing with a score bias, renormalised; routers_output[i] is the soft-capped logits "
            "the router ranks; the block multiplies the routed sum by moe_routed_scaling_factor after the experts "
            "(MoESpec.routed_output_scale_key), so router_top_k weights are not the whole factor an expert's "
            "output gets",
        ),
        "sarvam_mla": Variant(**MLA, tiny_config={**TINY_MLA, **GROUPED, "routed_scaling_factor": 2.5},
                              notes=MLA_NOTES + "; DeepSeek V3's classes (DeepseekV3ForCausalLM) under its own model type"),
        "kolibri1": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob", shared_experts="shared_experts",
                        routing=Routing(scores="logits", score_bias="gate.e_score_correction_bias")),
            residual=Residual(kind="sandwich", attention_post_norm="post_self_attn_layernorm",
                              mlp_post_norm="post_mlp_layernorm"),
            tiny_config={"num_experts": 8, "shared_expert_intermediate_size": 16, "norm_topk_prob": True,
                         "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4},
            notes="the router ranks logits plus a score bias (gate.e_score_correction_bias); the chosen logits' "
            "sigmoids are the weights, renormalised (norm_topk_prob); every layer routes, with shared experts; "
            "EXAONE 4 attention (q/k norms; sliding layers rotary, full layers NoPE) in GLM-4's sandwich-normed layers",
        ),
        "axk1": Variant(**MLA, moe=MoESpec(**{**V3_MOE.__dict__, "output_norm": "post_mlp_layernorm"}),
                        tiny_config={**TINY_MLA, **GROUPED, "routed_scaling_factor": 2.5},
                        notes=MLA_NOTES + "; DeepSeek V3's MoE whose block output passes its own norm "
                        "(mlp.post_mlp_layernorm), so mlps_output[i] of a routed layer is normed"),
        "axk2": Variant(heads=None, config_keys={**MLA["config_keys"], "projections": AXK2_PROJECTIONS},
                        tiny_config={**TINY_MLA, **GROUPED, "routed_scaling_factor": 2.5,
                                     "mlp_layer_types": ["dense", "sparse"]},
                        notes=MLA_NOTES + "; DeepSeek V3.2's sparse attention (the indexer masks keys per query) "
                        "with a sigmoid gate on the attention output before o_proj; gated input norms"),
        "minimax_m3_vl_text": Variant(
            moe=MoESpec(num_experts_key="num_local_experts", normalize_top_k=True, shared_experts="shared_experts",
                        routed_output_scale_key="routed_scaling_factor",
                        routing=Routing(scores="sigmoid", score_bias="gate.e_score_correction_bias"),
                        expert_by_hand=ExpertByHand(activation=minimax_clamped_swiglu)),
            # Layer 0 dense, layer 1 routed; a small swiglu_limit so the experts' clamp acts.
            tiny_config={"num_local_experts": 8, "intermediate_size": 24, "dense_intermediate_size": 48,
                         "shared_intermediate_size": 16, "routed_scaling_factor": 2.0, "rotary_dim": 4,
                         "swiglu_limit": 0.05, "layer_types": ["full_attention", "full_attention"]},
            refuse=minimax_sparse_layers,
            notes="text model of MiniMax-M3-VL: sigmoid routing with a score bias, renormalised; the block "
            "multiplies the routed sum by routed_scaling_factor after the experts, then adds the shared "
            "expert; clamped SwiGLU experts; q/k norms, partial rotary (rotary_dim); configs with "
            "minimax_m3_sparse (block-sparse indexer) layers are refused",
        ),
        "dots3_note_text": Variant(heads=None, config_keys=DOTS3_SIZES, tiny_config=TINY_DOTS3, notes=DOTS3_NOTES),
        "dots3_note": Variant(
            heads=None,
            config_keys=DOTS3_SIZES,
            # Published checkpoints keep the text config at the top level; the vision and audio configs are
            # only validated (their adapters must output the text width), the causal LM builds the text model.
            tiny_config={**TINY_DOTS3, "vision_config": {"adapter_out_dim": 32}, "audio_config": {"adapter_out_dim": 32}},
            notes=DOTS3_NOTES + "; AutoModelForCausalLM builds the text model (Dots3NoteForCausalLM) of the "
            "image-audio-text checkpoint",
        ),
        "deepseek_v4": Variant(unsupported=(
            "manifold hyper-connections: the residual stream is hc_mult streams (batch, seq, hc_mult, hidden); "
            "each sublayer reads a learned per-token collapse of them (attn_hc / ffn_hc 'pre' weights) and its "
            "output is expanded by 'post' weights and added to the streams mixed by a Sinkhorn 'comb' matrix, "
            "and model.hc_head collapses them before model.norm; no hidden_size-wide layers_output[i] exists, "
            "and residual writes, steering and skip_layers have no single stream to act on"
        )),
        "hy_v4": Variant(unsupported=(
            "hyper-connections as DeepSeek V4's: layers read and write hc_mult residual streams "
            "(batch, seq, hc_mult, hidden); each sublayer reads a learned per-token collapse of them "
            "(attn_hc / ffn_hc) and its output is added to every stream times per-token 'post' weights; "
            "model.hc_head collapses them before model.norm, and layers return (hidden, topk_indices) for the "
            "next layer's sparse-attention indexer, so no hidden_size-wide layers_output[i] exists"
        )),
        "longcat_flash": Variant(unsupported=(
            "each LongCat-Flash layer runs two attentions and two dense MLPs around one shortcut MoE "
            "(self_attn and mlps are ModuleLists of two), so no single self_attn/mlp module exists per layer"
        )),
    },
    description="DeepSeek-style MoE: mlp.gate (sigmoid + bias, expert groups) -> fused mlp.experts + mlp.shared_experts.",
)


@hookimpl
def register_adapters(register) -> None:
    register(DEEPSEEK)
