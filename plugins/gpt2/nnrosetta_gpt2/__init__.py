"""nnrosetta plugin for GPT-2: ``transformer.h[i].{attn,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

GPT-2 adds learned position embeddings (``transformer.wpe``) to the token
embeddings; `token_embeddings` is the token embedding alone (``wte``'s output).
"""

from __future__ import annotations

from nnrosetta import Adapter, AttentionSpec, ConfigKeys, HeadsSpec, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2


def _reordered_attention(config) -> str | None:
    if getattr(config, "reorder_and_upcast_attn", False):
        return (
            "reorder_and_upcast_attn=True sends eager attention through GPT2Attention._upcast_and_reordered_attn, "
            "which the declaration does not hook; load with reorder_and_upcast_attn=False"
        )
    return None


def _reordered_eager_attention(config) -> str | None:
    return _reordered_attention(config) if config._attn_implementation == "eager" else None


#: Eager attention's probabilities: the output of the dropout (the identity in eval mode)
#: inside the attention function the forward calls at ``attention_interface_1``.
ATTENTION = AttentionSpec(probabilities=conventions.ATTENTION.probabilities, refuse=_reordered_attention)
#: GPT-2 fuses queries, keys and values in ``c_attn``'s output; the core splits it into heads.
HEADS = HeadsSpec(
    fused_projection="c_attn",
    output_projection="c_proj",
    attention_call=conventions.ATTENTION_CALL,
    refuse=_reordered_eager_attention,
)

GPT2 = Adapter(
    name="gpt2",
    model_types=("gpt2", "gpt-sw3"),
    rename={
        "transformer.wte": "embed_tokens",
        "transformer.h": "layers",
        "transformer.ln_f": "ln_final",
        "attn": "self_attn",
    },
    attention=ATTENTION,
    heads=HEADS,
    config_keys=ConfigKeys(
        num_layers="n_layer",
        num_heads="n_head",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="n_embd",
        vocab_size="vocab_size",
    ),
    tiny_config={"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128, "n_inner": 64},
    variants={
        # HuggingFace maps gpt-sw3 to GPT2Config, whose model_type is "gpt2": a saved GPT-SW3 is a gpt2
        # folder (only its tokenizer differs). The claim names the type for `tiny:gpt-sw3` and the listing.
        "gpt-sw3": Variant(notes="GPT-SW3: GPT-2's model and config (a saved one reads model_type 'gpt2'); "
                                 "only the tokenizer (GPTSw3Tokenizer, sentencepiece) differs"),
    },
    description=(
        "GPT-2: transformer.h[i].{attn,mlp}, transformer.ln_f, transformer.wte. Attention probabilities "
        "and heads are not served with reorder_and_upcast_attn=True (a separate eager path)."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT2)
