"""nnrosetta plugin for DBRX: ``transformer.blocks[i]``, ``transformer.wte``, ``transformer.norm_f``.

Each block nests its attention one level down: ``norm_attn_norm`` holds ``norm_1``,
``attn`` and ``norm_2`` and returns ``(residual, norm_2(residual))``, so the standard
``self_attn`` is ``norm_attn_norm.attn`` (its input is ``norm_1``'s output, its output
the attention alone); ``mlp`` is the block's ``ffn``, whose input is ``norm_2``'s output.

- Per-head values: ``Wqkv``'s output is clamped to ``±clip_qkv`` before the split, so
  queries, keys and values are read at their per-head assignments (after the clamp,
  before rotary), not split from ``Wqkv``'s output.
- Mixture of experts: not declared (see `MOE_NOT_DECLARED`); ``mlps_output[i]`` is the
  whole routed block's output and every dense accessor works on it.
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, conventions, hookimpl

NNROSETTA_CONTRACT = 2

#: Why the adapter declares no `MoESpec`, in the words `nnrosetta adapters` shows.
MOE_NOT_DECLARED = (
    "MoE routing is not declared: DBRX's router module returns the logits alone and the block computes "
    "the top-k weights and indices in its method route_tokens_to_experts, while MoESpec reads "
    "(logits, weights, indices) from the router module's output; its expert counts live in "
    "config.ffn_config, and its experts are stacked w1/v1/w2 weights, not transformers' fused layout"
)

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.blocks": "layers",
    "transformer.norm_f": "ln_final",
    "norm_attn_norm.attn": "self_attn",
    "ffn": "mlp",
}

#: DBRX's defaults shrunk, keeping grouped-query attention, clip_qkv and rope_theta as the
#: released checkpoints carry them (attn_config.rope_theta is read by the attention itself).
TINY = {
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "max_seq_len": 128,
    "attn_config": {"kv_n_heads": 2, "clip_qkv": 8.0, "rope_theta": 10000.0},
    "ffn_config": {"ffn_hidden_size": 48, "moe_num_experts": 4, "moe_top_k": 2},
}

DBRX = Adapter(
    name="dbrx",
    model_types=("dbrx",),
    rename=RENAME,
    config_keys=ConfigKeys(head_dim=None),
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="out_proj"),
    tiny_config=TINY,
    notes=MOE_NOT_DECLARED,
    description=(
        "DBRX: transformer.blocks[i].{norm_attn_norm.attn, ffn}, transformer.norm_f; grouped-query "
        "attention with clip_qkv; MoE blocks served as dense mlps (routing not declared)."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(DBRX)
