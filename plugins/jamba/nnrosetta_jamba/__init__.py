"""nnrosetta plugin for Jamba: Mamba blocks interleaved with softmax attention, MoE feed-forwards.

Jamba's layers are of two classes: ``JambaAttentionDecoderLayer`` (mixer at ``self_attn``) and
``JambaMambaDecoderLayer`` (a selective scan at ``mamba``), as ``config.layers_block_type``
says (from ``attn_layer_period``/``attn_layer_offset``). Every layer then adds a
``feed_forward``: a dense MLP, or every ``expert_layer_period`` layers a sparse MoE block
whose router is ``feed_forward.router`` (``(logits, weights, indices)``), served as ``mlp``.
"""

from __future__ import annotations

from nnrosetta import Adapter, MoESpec, conventions, hookimpl
from nnrosetta.layer_kinds import ATTENTION, STATE_SPACE, LayerKinds, from_config

NNROSETTA_CONTRACT = 2

MAMBA_ATTENTION_HYBRID = LayerKinds(
    kinds=from_config("layers_block_type", {"attention": ATTENTION, "mamba": STATE_SPACE}),
    mixers={STATE_SPACE: "mamba"},
)

JAMBA = Adapter(
    name="jamba",
    model_types=("jamba",),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.final_layernorm": "ln_final",
            "feed_forward": "mlp"},
    layer_kinds=MAMBA_ATTENTION_HYBRID,
    attention=conventions.ATTENTION,
    heads=conventions.heads(rotary=False),
    moe=MoESpec(router="router", num_experts_key="num_experts", normalize_top_k=False),
    tiny_config={
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "mamba_d_state": 4,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "mamba_dt_rank": 4,
        "max_position_embeddings": 128,
    },
    description="Jamba: Mamba (mamba) and softmax attention (self_attn) layers by layers_block_type; MoE feed-forwards.",
)


@hookimpl
def register_adapters(register) -> None:
    register(JAMBA)
