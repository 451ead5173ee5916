"""nnrosetta plugin for GPT-2: ``transformer.h[i].{attn,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

GPT-2 adds learned position embeddings (``transformer.wpe``) to the token
embeddings; `token_embeddings` is the token embedding alone (``wte``'s output).
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, hookimpl

GPT2 = Adapter(
    name="gpt2",
    model_types=("gpt2",),
    rename={
        "transformer.wte": "embed_tokens",
        "transformer.h": "layers",
        "transformer.ln_f": "ln_final",
        "attn": "self_attn",
    },
    config_keys=ConfigKeys(
        num_layers="n_layer",
        num_heads="n_head",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="n_embd",
        vocab_size="vocab_size",
    ),
    tiny_configs={
        "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128, "n_inner": 64},
    },
    description="GPT-2: transformer.h[i].{attn,mlp}, transformer.ln_f, transformer.wte.",
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT2)
