"""nnrosetta plugin for GPT-BigCode (SantaCoder, StarCoder): ``transformer.h[i].{attn,mlp}``, ``transformer.ln_f``.

The module tree is GPT-2's, with ``nn.Linear`` projections. What differs is the
attention: with ``multi_query=True`` (the default, every StarCoder) all query heads
share one key head and one value head, so ``num_kv_heads`` is 1 (the config's
``num_key_value_heads``) and ``keys[i]`` / ``values[i]`` are (batch, 1, seq,
head_dim). ``c_attn``'s output is then three blocks, [queries (hidden) | key
(head_dim) | value (head_dim)], which the core splits. With ``multi_query=False``
``c_attn`` is laid out per head instead, and per-head values are refused for
such a checkpoint (`per_head_layout`).

A checkpoint with ``add_cross_attention=True`` is refused at load (`cross_attention`).
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, HeadsSpec, conventions, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "attn": "self_attn",
}


def cross_attention(config) -> str | None:
    """Refuse blocks that hold a cross-attention sublayer the standard interface has no name for."""
    if getattr(config, "add_cross_attention", False):
        return (
            "add_cross_attention=True gives every block a cross-attention sublayer (`crossattention`, "
            "`ln_cross_attn`) between attention and MLP, which no standard name covers; with encoder_hidden_states "
            "a layer adds more than attentions_output + mlps_output. Load it with add_cross_attention=False"
        )
    return None


def per_head_layout(config) -> str | None:
    """Per-head values are declared for the multi-query layout of ``c_attn`` only."""
    if not getattr(config, "multi_query", True):
        return (
            "multi_query=False lays c_attn out per head ([q, k, v] of each head side by side), while the "
            "adapter splits the multi-query layout [queries | key | value]; use a multi-query checkpoint"
        )
    return None


def attention_kv_heads(config) -> int:
    """The key/value heads the attention runs: one under multi-query, else one per query head.

    The attention reads ``multi_query``; the config's ``num_key_value_heads`` is set from it
    when the config is built, so a saved or overridden value can disagree with the weights.
    """
    return 1 if getattr(config, "multi_query", True) else config.n_head


#: Multi-query ``c_attn``: [all queries | the one key head | the one value head].
HEADS = HeadsSpec(
    fused_projection="c_attn",
    fused_layout="blocks",
    output_projection="c_proj",
    attention_call=conventions.ATTENTION_CALL,
    refuse=per_head_layout,
)

#: SantaCoder-shaped: multi-query attention (one key/value head), GELU-tanh MLP.
TINY = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, "n_inner": 128, "multi_query": True}

GPT_BIGCODE = Adapter(
    name="gpt_bigcode",
    model_types=("gpt_bigcode",),
    rename=RENAME,
    config_keys=ConfigKeys(
        num_layers="n_layer",
        num_heads="n_head",
        num_kv_heads=attention_kv_heads,
        head_dim=None,
        hidden_size="n_embd",
        vocab_size="vocab_size",
    ),
    attention=conventions.ATTENTION,
    heads=HEADS,
    tiny_config=TINY,
    refuse=cross_attention,
    description=(
        "GPT-BigCode / StarCoder: transformer.h[i].{attn,mlp}, transformer.ln_f, transformer.wte; multi-query "
        "attention (one key/value head). Refused: add_cross_attention=True."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT_BIGCODE)
