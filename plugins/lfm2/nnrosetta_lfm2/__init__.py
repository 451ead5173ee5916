"""nnrosetta plugin for Liquid's LFM2 family: short gated convolutions interleaved with softmax attention.

Each layer is ``h + mixer(operator_norm(h))`` then ``h + feed_forward(ffn_norm(h))``; the mixer
is a gated short convolution at ``conv`` (``config.layer_types`` says ``"conv"``) or a softmax
attention at ``self_attn`` (``"full_attention"``). The final norm is called
``embedding_norm`` although it runs after the last layer.

- ``lfm2``: dense feed-forward on every layer;
- ``lfm2_moe``: the first ``num_dense_layers`` dense, then sparse MoE blocks (served through the
  MoE interface where the block has a router);
- ``lfm3``: LFM2's layout with each sublayer's output normed before it is added (sandwich).
"""

from __future__ import annotations

from nnrosetta import Adapter, MoESpec, Residual, Variant, conventions, hookimpl
from nnrosetta.layer_kinds import ATTENTION, CONVOLUTION, SLIDING_ATTENTION, LayerKinds, from_config

NNROSETTA_CONTRACT = 2

CONV_HYBRID = LayerKinds(
    kinds=from_config("layer_types", {"full_attention": ATTENTION, "sliding_attention": SLIDING_ATTENTION, "conv": CONVOLUTION}),
    mixers={CONVOLUTION: "conv"},
)

TINY = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "block_ff_dim": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "conv_L_cache": 3,
    "layer_types": ["conv", "full_attention", "conv", "full_attention"],
    "max_position_embeddings": 128,
}

LFM2 = Adapter(
    name="lfm2",
    model_types=("lfm2", "lfm2_moe", "lfm3"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.embedding_norm": "ln_final",
            "feed_forward": "mlp"},
    layer_kinds=CONV_HYBRID,
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="out_proj"),
    tiny_config=TINY,
    variants={
        "lfm2_moe": Variant(
            moe=MoESpec(num_experts_key="num_experts", normalize_top_k="norm_topk_prob"),
            tiny_config={"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "num_dense_layers": 1},
            notes="dense first layers, then sparse MoE feed-forward blocks",
        ),
        "lfm3": Variant(
            heads=conventions.HEADS,
            tiny_config={"layer_types": ["conv", "sliding_attention", "conv", "full_attention"], "sliding_window": 4},
            residual=Residual(kind="sandwich", attention_post_norm="post_operator_norm", mlp_post_norm="post_ffn_norm"),
            notes="each mixer's and feed-forward's output normed before it is added (post_operator_norm, post_ffn_norm)",
        ),
    },
    description="LFM2 hybrids: gated short convolutions (conv) and softmax attention (self_attn), by layer_types.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LFM2)
