"""nnrosetta plugin for DBRX: ``transformer.blocks[i]``, ``transformer.wte``, ``transformer.norm_f``.

Each block nests its attention one level down: ``norm_attn_norm`` holds ``norm_1``,
``attn`` and ``norm_2`` and returns ``(residual, norm_2(residual))``, so the standard
``self_attn`` is ``norm_attn_norm.attn`` (its input is ``norm_1``'s output, its output
the attention alone); ``mlp`` is the block's ``ffn``, whose input is ``norm_2``'s output.

- Per-head values: ``Wqkv``'s output is clamped to ``±clip_qkv`` before the split, so
  queries, keys and values are read at their per-head assignments (after the clamp,
  before rotary), not split from ``Wqkv``'s output.
- Mixture of experts (`MOE`): ``routers_output[i]`` is the router's bare logits; the top-k
  the block computes in ``route_tokens_to_experts`` (softmax then top-k, p-normed with
  ``moe_normalize_expert_weights``) is read and written at the ``experts`` call's
  arguments; the experts are flat ``w1``/``v1``/``w2`` weights declared as data.
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, MoESpec, conventions, hookimpl
from nnrosetta.moe_declarations import ExpertByHand, Routing

NNROSETTA_CONTRACT = 2

#: DBRX's router module returns the logits alone; the block computes the top-k in
#: route_tokens_to_experts and hands it to the experts call, where it is read and written.
#: The experts are flat w1 / v1 / w2 of shape (experts * ffn, hidden): gate x @ w1.T,
#: up x @ v1.T, down h @ w2 (w2 is applied untransposed).
MOE = MoESpec(
    router="router",
    router_returns=("logits",),
    top_k_at_experts=(1, 2),
    num_experts_key="ffn_config.moe_num_experts",
    experts_per_token_key="ffn_config.moe_top_k",
    normalize_top_k=lambda config: config.ffn_config.moe_normalize_expert_weights == 1,
    routing=Routing(scores="softmax"),
    expert_by_hand=ExpertByHand(gate_up=None, gate="mlp.w1", up="mlp.v1", down="mlp.w2", down_transposed=True,
                                activation="mlp.activation_fn", flat_rows="ffn_config.ffn_hidden_size"),
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
    # The attention reads attn_config.kv_n_heads; the top-level num_key_value_heads is copied from it
    # when the config is built, so a saved or overridden value can disagree with the weights.
    config_keys=ConfigKeys(num_kv_heads="attn_config.kv_n_heads", head_dim=None),
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="out_proj"),
    moe=MOE,
    tiny_config=TINY,
    description=(
        "DBRX: transformer.blocks[i].{norm_attn_norm.attn, ffn}, transformer.norm_f; grouped-query "
        "attention with clip_qkv; MoE routing read from the bare router logits and the experts call."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(DBRX)
