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
  (gated by a sigmoid inside the block), exposed as ``shared_experts_output[i]``;
- phimoe (sparse mixer), minimax_m2 and afmoe (sigmoid with a score bias), ernie4_5_moe
  (softmax with a score bias), hunyuan_v1_moe, aria_text (top-k then softmax), llama4_text
  (dense weights into the experts' input): see each variant's notes; jetmoe's MLP routing is
  read and written inside its router (`JETMOE_MOE`, `JETMOE_NOTES`); zaya's routing, with its
  skip expert, in `ZAYA_MOE` (`ZAYA_ROUTING`), its learned affine adds declared in `ZAYA_RESIDUAL`,
  its CCA heads described in `ZAYA_HEADS`.
"""

from __future__ import annotations

import math

import torch

from nnrosetta import (
    Adapter,
    Argument,
    Assigned,
    AttentionSpec,
    Called,
    LayerTensor,
    MoESpec,
    Residual,
    Variant,
    conventions,
    hookimpl,
)
from nnrosetta.moe_declarations import ExpertByHand, Routing, TopKInRouter

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

#: JetMoE's MLP router returns a sort-grouped dispatch layout (slot order, token of each slot,
#: sorted weights, tokens per expert, logits), built from the top-k it chooses inside its forward:
#: the weights are read where the softmax over the top-k logits is assigned, the indices where
#: the one-hot count (zeros.scatter) receives them; a new top-k is written where the router's
#: later code reads it: the count, the flattened indices it sorts, and the flattened weights.
JETMOE_TOP_K = TopKInRouter(
    indices=Argument(Called("zeros.scatter"), 1),
    weights=Assigned("top_k_gates", occurrence=0),
    written=(("indices", Argument(Called("zeros.scatter"), 1)), ("indices", Assigned("top_k_experts")),
             ("weights", Assigned("top_k_gates", occurrence=1))),
)

#: JetMoE's MoE block: the block itself holds the stacked experts (input_linear: gate and up
#: halves, output_linear: down, activation) and adds its bias after the weighted sum.
JETMOE_MOE = MoESpec(
    router="router",
    experts="",
    router_returns=("other", "other", "other", "other", "logits"),
    top_k_in_router=JETMOE_TOP_K,
    distinct_experts=True,
    normalize_top_k=True,
    recorded_logits=(2, 1),
    expert_by_hand=ExpertByHand(gate_up="input_linear.weight", down="output_linear.weight", activation="activation"),
)

#: What is served on JetMoE, and what is not.
JETMOE_NOTES = (
    "served: the dense interface (mlp is the MoE block's output, bias included; self_attn the "
    "mixture-of-attention-heads block's), MoE routing of the MLP block (mlp.router: top-k of the logits, "
    "softmax over the chosen k; routers_output[i], router_top_k[i] read and written inside the router, "
    "before it regroups the choice into its sort-grouped layout, so read router_top_k[i] before "
    "routers_output[i]; a token's k slots must name different experts, since the router counts each "
    "chosen expert once; ablate_experts) and attention_probabilities[i], whose heads are (expert slot, kv "
    "head) pairs: head s * num_key_value_heads + h is the s-th attention expert the token chose, so one head "
    "index mixes experts across query tokens. Not served: the attention mixture's routing "
    "(self_attention.experts.router, which picks each token's query/output projection experts) is no "
    "MoE routing of the MLP and is not exposed through the MoE accessors; the model's own router_logits "
    "output records it first in each layer (recorded_logits=(2, 1)); heads are not served: per-head "
    "queries are per attention expert slot, not per head"
)

def jetmoe_stale_head_count(config) -> "str | None":
    """JetMoE's attention runs num_key_value_heads * num_experts_per_tok heads, whatever the config says.

    JetMoeConfig computes num_attention_heads from those two, but a num_attention_heads passed in
    overrides it and is saved; head counts read from such a config would be wrong.
    """
    heads = config.num_key_value_heads * config.num_experts_per_tok
    if config.num_attention_heads == heads:
        return None
    return (
        f"num_attention_heads={config.num_attention_heads}, but JetMoE's attention runs num_key_value_heads * "
        f"num_experts_per_tok = {config.num_key_value_heads} * {config.num_experts_per_tok} = {heads} heads; load it "
        f"with config=AutoConfig.from_pretrained(<model>, num_attention_heads={heads})"
    )


def softcapped_projection(model, hidden: torch.Tensor) -> torch.Tensor:
    """Beam's logits: final norm, lm_head, then the float32 soft cap, as ``BeamForCausalLM.forward`` orders them."""
    logits = model.lm_head(model.ln_final(hidden))
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:
        logits = torch.tanh(logits.float() / cap) * cap
    return logits


def _beam_add(offset: int, of_skip: bool):
    """Beam's k-th residual add (k = 2(i + 1) + offset): the stream times sqrt((k - 1) / k), the branch 1 / sqrt(k)."""

    def scale(config, layer_index: int) -> float:
        k = 2 * (layer_index + 1) + offset
        return math.sqrt((k - 1) / k) if of_skip else 1.0 / math.sqrt(k)

    return scale


#: Beam's depth-scaled sandwich (``depth_scaled_residual_add``): the attention is add 2(i + 1), the MLP the next.
DEPTH_SCALED_SANDWICH = Residual(
    kind="sandwich", attention_post_norm="post_attention_layernorm", mlp_post_norm="post_feedforward_layernorm",
    attention_skip=_beam_add(0, of_skip=True), attention_scale=_beam_add(0, of_skip=False),
    mlp_skip=_beam_add(1, of_skip=True), mlp_scale=_beam_add(1, of_skip=False),
)

#: ZAYA1: each add is a learned affine of both terms, ``(x + b) * s``, on the branch and on the skip.
ZAYA_RESIDUAL = Residual(
    attention_terms=(LayerTensor("post_attention_residual_scale.hidden_states_bias"),),
    attention_scale=LayerTensor("post_attention_residual_scale.hidden_states_scale"),
    attention_skip_terms=(LayerTensor("post_attention_residual_scale.residual_bias"),),
    attention_skip=LayerTensor("post_attention_residual_scale.residual_scale"),
    mlp_terms=(LayerTensor("post_mlp_residual_scale.hidden_states_bias"),),
    mlp_scale=LayerTensor("post_mlp_residual_scale.hidden_states_scale"),
    mlp_skip_terms=(LayerTensor("post_mlp_residual_scale.residual_bias"),),
    mlp_skip=LayerTensor("post_mlp_residual_scale.residual_scale"),
)

#: What ZAYA's per-head values are: CCA makes them, not one projection per head.
ZAYA_HEADS = (
    "queries[i]/keys[i] are CCA's: q_proj/k_proj mixed over tokens by two causal convolutions "
    "(qkv_proj.conv_qk_depthwise, conv_qk_grouped) plus a query/key mean residual, then L2-normalised to "
    "sqrt(head_dim) with a learned per-kv-head key scale (qk_norm.temp), read before rotary; values[i] are half "
    "the current token's projection (v_proj_current), half the previous token's (v_proj_delayed)"
)

def _with_skip_expert(config) -> int:
    """ZAYA's router classes: the routed experts and one skip expert, index num_experts."""
    return config.num_experts + 1


def _one_skip_expert(config) -> int:
    return 1


def _sparse_mixer_top_k(config) -> int:
    """PhiMoE's sparse mixer picks two experts whatever ``num_experts_per_tok`` says.

    HF passes ``top_k`` to ``sparsemixer``, which never reads it: the best logit, then the
    best of the rest. A config with another k still routes every token to two experts.
    """
    return 2


#: ZAYA's MoE block: its router (mlp.gate) ranks softmax scores plus balancing_biases over
#: num_experts + 1 classes, the last a skip expert with no parameters that adds nothing; before
#: returning it hands a skip choice on as expert 0 with weight 0, so the top-k is read inside the
#: router where torch.gather receives it (and the gathered weights), and written at the router's
#: output, a skip choice handed on as the router does (zero_experts_passed_as=0): the fused experts
#: implementations take no index num_experts.
ZAYA_MOE = MoESpec(
    num_experts_key=_with_skip_expert,
    router_returns=("logits", "weights", "indices", "other"),
    top_k_in_router=TopKInRouter(indices=Argument(Called("torch.gather"), "index"),
                                 weights=Assigned("router_probs", before=Called("router_probs.masked_fill"))),
    normalize_top_k=False,
    zero_experts_key=_one_skip_expert,
    zero_experts_output="zero",
    zero_experts_passed_as=0,
    routing=Routing(scores="softmax", score_bias="gate.balancing_biases"),
)

#: What ZAYA's MoE routing serves.
ZAYA_ROUTING = (
    "MoE routing over num_experts + 1 classes: index num_experts is the skip expert, which has no "
    "parameters and adds nothing (zero_experts_output='zero'); router_top_k[i] is read inside the router "
    "before it hands a skip choice on as expert 0 with weight 0, so read it before routers_output[i], and "
    "written at the router's output, a skip choice handed on the same way; the weights are the chosen softmax "
    "probabilities, not renormalised; the choice ranks softmax scores plus gate.balancing_biases; the "
    "router's fourth output, the state the next layer's router adds, is not part of the routing served"
)

ZAYA = Variant(
    heads=conventions.HEADS,
    moe=ZAYA_MOE,
    residual=ZAYA_RESIDUAL,
    config_keys={"projections": {"qkv_proj.q_proj": (("num_heads", "head_dim"),),
                                 "qkv_proj.k_proj": (("num_kv_heads", "head_dim"),)}},
    # initializer_range: at 0.02 the router MLP's (perturbed) biases outweigh its input and every token
    # of layer 0 takes one expert; at 0.5 tokens spread over several.
    tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "router_hidden_size": 16,
                 "num_experts_per_tok": 1, "initializer_range": 0.5},
    notes="served: logits, layers, attentions_output (CCA attention's o_proj output), attention_probabilities "
    "(HF eager's softmax map of the CCA queries and keys), mlps_output (the MoE block's output), a learned "
    "affine residual ((x + b) * s on branch and skip); layers_input[0] is the embedding after "
    "(e + input_hidden_states_bias) * input_hidden_states_scale; " + ZAYA_HEADS + "; " + ZAYA_ROUTING,
)

MIXTRAL = Adapter(
    name="mixtral",
    model_types=("mixtral", "olmoe", "qwen3_moe", "flex_olmo", "qwen2_moe", "phimoe", "minimax_m2",
                 "hunyuan_v1_moe", "ernie4_5_moe", "afmoe", "aria_text", "llama4_text", "llama4", "jetmoe",
                 "mellum", "flint", "hy_v3", "beam", "zaya"),
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
        "phimoe": Variant(
            moe=MoESpec(router="router", normalize_top_k=False, experts_per_token_key=_sparse_mixer_top_k),
            tiny_config={"num_local_experts": 4},
            notes="sparse-mixer routing: the first expert is the best logit, the second the best of the rest "
            "(in eval mode, so the top-2 of the logits); each weight is a softmax over the logits masked near "
            "its expert's, so the two weights do not sum to 1; always two experts, whatever num_experts_per_tok "
            "says (the sparse mixer ignores it)",
        ),
        "minimax_m2": Variant(
            moe=MoESpec(normalize_top_k=True, routing=Routing(scores="sigmoid", score_bias="e_score_correction_bias")),
            tiny_config={"num_local_experts": 4},
            notes="sigmoid routing; the score bias sits on the block (mlp.e_score_correction_bias) and is passed to the router",
        ),
        "hunyuan_v1_moe": Variant(
            moe=MoESpec(num_experts_key="num_experts", experts_per_token_key="moe_topk", shared_experts="shared_mlp"),
            heads=None,
            tiny_config={"num_experts": 4, "moe_topk": 2, "use_qk_norm": True},
            notes="softmax then top-k, renormalised; a dense shared MLP at mlp.shared_mlp is added to every token; "
            "heads not served: the query/key norms run after rotary, so no per-head query exists that rotary "
            "alone turns into what the attention reads",
        ),
        "ernie4_5_moe": Variant(
            moe=MoESpec(num_experts_key="moe_num_experts", experts_per_token_key="moe_k", shared_experts="shared_experts",
                        routing=Routing(scores="softmax", score_bias="gate.moe_statics.e_score_correction_bias")),
            tiny_config={"moe_num_experts": 4, "moe_k": 2, "moe_intermediate_size": 24, "moe_num_shared_experts": 1,
                         "moe_layer_start_index": 1, "moe_layer_end_index": 1},
            notes="softmax scores plus a score bias (gate.moe_statics) choose the experts, the chosen softmax "
            "weights are renormalised; layer 0 is dense (moe_layer_start_index)",
        ),
        "afmoe": Variant(
            moe=MoESpec(router="router", num_experts_key="num_experts", shared_experts="shared_experts",
                        top_k_scale_key="route_scale",
                        routing=Routing(scores="sigmoid", score_bias="expert_bias")),
            residual=Residual(kind="sandwich", attention_post_norm="post_attention_layernorm",
                              mlp_post_norm="post_mlp_layernorm"),
            tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "num_shared_experts": 1, "num_dense_layers": 1,
                         "route_scale": 2.0, "layer_types": ["sliding_attention", "full_attention"],
                         "global_attn_every_n_layers": 2},
            notes="sigmoid routing with a score bias (mlp.expert_bias), renormalised and times route_scale; "
            "the first num_dense_layers are dense; each sublayer's output is normalised before it is added",
        ),
        "llama4_text": Variant(
            rename={"feed_forward": "mlp"},
            moe=MoESpec(router="router", router_returns=("dense_weights", "logits"), normalize_top_k=False,
                        shared_experts="shared_expert", routing=Routing(scores="logits"),
                        expert_by_hand=ExpertByHand(transposed=True)),
            tiny_config={"num_local_experts": 4, "num_experts_per_tok": 1, "intermediate_size_mlp": 40,
                         "interleave_moe_layer_step": 2, "moe_layers": [1], "no_rope_layers": [1, 0],
                         "attention_chunk_size": 4},
            notes="top-k of the logits, each chosen logit's sigmoid is its weight, handed to the experts as "
            "a (tokens, num_experts) matrix zero off the chosen ones and multiplied into the expert's INPUT "
            "(expert(w * x)); a shared expert at feed_forward.shared_expert; dense and MoE layers interleave",
        ),
        "llama4": Variant(
            # Llama4ForCausalLM builds the text decoder from the image-text config's text config (the
            # loaded model's config is llama4_text's), so the tree and routing are llama4_text's.
            rename={"feed_forward": "mlp"},
            moe=MoESpec(router="router", router_returns=("dense_weights", "logits"), normalize_top_k=False,
                        shared_experts="shared_expert", routing=Routing(scores="logits"),
                        expert_by_hand=ExpertByHand(transposed=True)),
            tiny_config={"text_config": {**TINY, "num_local_experts": 4, "num_experts_per_tok": 1,
                                         "intermediate_size_mlp": 40, "interleave_moe_layer_step": 2,
                                         "moe_layers": [1], "no_rope_layers": [1, 0], "attention_chunk_size": 4,
                                         "vocab_size": 384, "pad_token_id": 3, "bos_token_id": 1,
                                         "eos_token_id": 2},
                         "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                           "num_attention_heads": 2}},
            notes="image-text config, text path: the causal LM class builds llama4_text's decoder from the text "
            "config, served as llama4_text",
        ),
        "jetmoe": Variant(
            rename={"self_attention": "self_attn"},
            moe=JETMOE_MOE,
            heads=None,
            refuse=jetmoe_stale_head_count,
            # initializer_range: at 0.02 the embeddings are small beside the (perturbed) attention-mixture
            # bias, so every token routes alike; 0.5 spreads tokens over all experts.
            tiny_config={"num_key_value_heads": 2, "kv_channels": 8, "num_local_experts": 4, "intermediate_size": 24,
                         "initializer_range": 0.5},
            # Each chosen attention expert slot projects num_key_value_heads queries (input_linear, an
            # (experts, out, in) stack); kv_proj fuses keys and values. The attention call's num_heads =
            # num_key_value_heads * num_experts_per_tok (the config computes it), checked by its probabilities.
            config_keys={"projections": {"experts.input_linear": (("num_kv_heads", "head_dim"),),
                                         "experts.output_linear": (("hidden_size",),),
                                         "kv_proj": (("num_kv_heads", "head_dim"), ("num_kv_heads", "head_dim"))}},
            notes=JETMOE_NOTES,
        ),
        "mellum": Variant(
            moe=SWITCHED,
            tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "norm_topk_prob": True,
                         "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4,
                         "mlp_layer_types": ["dense", "sparse"]},
            notes="Qwen3-MoE's attention and router in Laguna's layers: sliding and full attention layers with "
            "their own rotary, dense and sparse MLP layers (mlp_layer_types)",
        ),
        "flint": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob", shared_experts="shared_expert",
                        routing=Routing(scores="sigmoid")),
            heads=conventions.HEADS,
            tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "shared_expert_intermediate_size": 40,
                         "norm_topk_prob": True, "mlp_only_layers": [0],
                         "layer_types": ["full_attention", "sliding_attention"], "sliding_window": 4},
            attention=AttentionSpec(probabilities=conventions.ATTENTION.probabilities, sinks="sinks"),
            notes="sigmoid routing without a score bias, renormalised (norm_topk_prob); an ungated shared expert "
            "at mlp.shared_expert is added to every token; the first mlp_only_layers are dense; attention "
            "sinks (self_attn.sinks, every layer): attention_probabilities[i] is HF eager's, without the sink "
            "column, so rows sum to 1 minus the sink's share; attention_patterns(i) recomputes the softmax with "
            "the sink column and drops it likewise; only the sliding layers apply rotary (queries[i] of a full "
            "layer are rotated_queries[i]); HuggingFace has no sdpa path (sinks), so patterns are compared "
            "under eager only",
        ),
        "hy_v3": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k=True, shared_experts="shared_experts",
                        top_k_scale_key="router_scaling_factor",
                        routing=Routing(scores="sigmoid", score_bias="e_score_correction_bias")),
            tiny_config={"num_experts": 4, "moe_intermediate_size": 24, "num_shared_experts": 1,
                         "router_scaling_factor": 2.5, "mlp_layer_types": ["dense", "sparse"]},
            notes="sigmoid routing with a score bias on the block (mlp.e_score_correction_bias, passed to the "
            "router), renormalised and times router_scaling_factor; shared experts at mlp.shared_experts; "
            "layer 0 dense (mlp_layer_types); Apertus attention (q/k norms before rotary)",
        ),
        "beam": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob",
                        routed_output_scale_key="routed_scaling_factor",
                        routing=Routing(scores="sigmoid", score_bias="gate.e_score_correction_bias",
                                        groups=("n_group", "topk_group"), group_score="top2_sum")),
            residual=DEPTH_SCALED_SANDWICH,
            final_projection=softcapped_projection,
            heads=None,
            tiny_config={"num_experts": 8, "moe_intermediate_size": 24, "n_group": 4, "topk_group": 2,
                         "routed_scaling_factor": 2.5, "final_logit_softcapping": 30.0,
                         "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4,
                         "mlp_layer_types": ["dense", "sparse"]},
            notes="DeepSeek V3's grouped sigmoid router with a score bias, renormalised; the block multiplies the "
            "routed sum by routed_scaling_factor after the experts; sublayer outputs pass their post norms "
            "and a depth-scaled residual add; logits soft-capped in float32; heads not served: a per-head "
            "sigmoid gate (self_attn.gate_proj + gate_bias) multiplies each head's output before o_proj, and "
            "full-attention layers (NoPE) scale queries by position after the point rotary would read",
        ),
        "zaya": ZAYA,
        "aria_text": Variant(
            moe=MoESpec(router="router", num_experts_key="moe_num_experts", experts_per_token_key="moe_topk",
                        shared_experts="shared_experts", expert_by_hand=ExpertByHand(transposed=True)),
            tiny_config={"moe_num_experts": 4, "moe_topk": 2, "moe_num_shared_experts": 1},
            notes="top-k then softmax; expert weights stored (in, out); shared experts at mlp.shared_experts",
        ),
    },
    description="Mixtral-style MoE: mlp.gate -> (logits, weights, indices), fused mlp.experts.",
)


@hookimpl
def register_adapters(register) -> None:
    register(MIXTRAL)
