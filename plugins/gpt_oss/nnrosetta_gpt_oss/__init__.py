"""nnrosetta plugin for gpt-oss: Llama's module tree, a biased router, clamped SwiGLU experts, sinks.

- Routing: ``mlp.router`` is a linear layer with a bias; its logits (bias included, as
  ``routers_output[i]``) give the top-k, whose logits are then softmaxed (top-k then
  softmax, so the k weights sum to 1).
- Experts: ``mlp.experts.gate_up_proj`` is stored (in, out) with gate and up columns
  interleaved, each projection has a bias, and the GLU clamps both halves
  (`clamped_swiglu`); declared as data in `EXPERT`.
- ``mlp`` returns ``(hidden, router_scores)``; ``mlps_output[i]`` is the hidden part.
- Attention sinks: one learned logit per head (``self_attn.sinks``) joins each softmax and
  is dropped after it, so ``attention_probabilities[i]`` is what HF eager returns: the key
  columns only, without the sink column, and a row sums to less than 1 (the sink takes the
  rest). Declared as ``AttentionSpec(sinks="sinks")``.
"""

from __future__ import annotations

import dataclasses

import torch

from nnrosetta import Adapter, AttentionSpec, MoESpec, conventions, hookimpl
from nnrosetta.moe_declarations import ExpertByHand

NNROSETTA_CONTRACT = 2


def clamped_swiglu(experts: torch.nn.Module, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gpt-oss's GLU: gate clamped above, up clamped both ways, (up + 1) * gate * sigmoid(alpha * gate)."""
    gate = gate.clamp(max=experts.limit)
    up = up.clamp(min=-experts.limit, max=experts.limit)
    return (up + 1) * gate * torch.sigmoid(gate * experts.alpha)


EXPERT = ExpertByHand(transposed=True, interleaved=True, bias_suffix="_bias", activation=clamped_swiglu)

SINK_NOTES = (
    "attention sinks (self_attn.sinks): attention_probabilities[i] excludes the sink column, as HF eager "
    "returns it; rows sum to 1 minus the sink's share"
)

#: Eager attention's probabilities, with the per-head sink logits at ``self_attn.sinks``.
ATTENTION = AttentionSpec(probabilities=conventions.ATTENTION.probabilities, sinks="sinks")

#: Llama's heads; the rotary call is named so the heads check reads the scale YaRN gives cos and sin.
HEADS = dataclasses.replace(conventions.HEADS, rotary_output=conventions.ROTARY_CALL)

#: Shrunk defaults: alternating sliding and full attention kept; a small swiglu_limit so the clamp acts.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "sliding_window": 4,
    "layer_types": ["sliding_attention", "full_attention"],
    "swiglu_limit": 0.05,
}

GPT_OSS = Adapter(
    name="gpt_oss",
    model_types=("gpt_oss",),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
    attention=ATTENTION,
    heads=HEADS,
    moe=MoESpec(router="router", normalize_top_k=True, expert_by_hand=EXPERT),
    tiny_config=TINY,
    notes=SINK_NOTES + "; attention_patterns(i) recomputes the softmax with the sink column and drops it; "
    "YaRN rotary multiplies cos and sin by its attention factor (0.1 ln(factor) + 1), so rotated_queries[i] "
    "are rotary's output with that scale (heads.rotary_output names the call); HuggingFace has no sdpa path "
    "for gpt-oss (sinks), so patterns are compared under eager only",
    description="gpt-oss: biased router, top-k then softmax, clamped interleaved SwiGLU experts, attention sinks.",
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT_OSS)
