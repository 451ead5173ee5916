"""nnrosetta plugin for GPT-Neo: ``transformer.h[i].{attn.attention,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

GPT-Neo alternates global and local attention (``config.attention_layers``, from
``attention_types``): a local layer's query sees only the previous
``window_size`` tokens. Both kinds are the same module class
(``GPTNeoSelfAttention``) behind a thin ``GPTNeoAttention`` wrapper; ``self_attn``
is the inner module, whose forward computes attention in its own ``_attn``:
no scaling by 1/sqrt(head_dim), the causal and local masks from its ``bias``
buffer, then softmax and ``attn_dropout``. The probabilities are served there.
Per-head values are not declared (`NO_HEADS`). Like GPT-2, ``token_embeddings``
is ``wte``'s output alone; layer 0 reads it plus the learned position embedding.
"""

from __future__ import annotations

from nnrosetta import Adapter, AttentionSpec, Called, ConfigKeys, Inside, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "attn.attention": "self_attn",
}

#: The probabilities ``_attn`` multiplies the values by: its dropout module's output (eager only).
ATTENTION = AttentionSpec(probabilities=Inside(Called("self._attn"), Called("self.attn_dropout")))

#: Why GPT-Neo declares no `HeadsSpec`.
NO_HEADS = (
    "per-head values are not declared: the attention calls its own `self._attn(query, key, value, mask)` "
    "(unscaled scores, local window from its `bias` buffer), not transformers' attention interface "
    "`(module, query, key, value, mask, scaling=...)` that a HeadsSpec's `attention_call` must be, so "
    "rotated queries/keys and recomputed patterns would be read at the wrong arguments with the wrong scale"
)

#: Global and local layers alternate (the default pattern); a window of 4 makes them differ on short prompts.
TINY = {
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 128,
    "attention_types": [[["global", "local"], 1]],
    "window_size": 4,
}

GPT_NEO = Adapter(
    name="gpt_neo",
    model_types=("gpt_neo",),
    rename=RENAME,
    config_keys=ConfigKeys(
        num_layers="num_layers",
        num_heads="num_heads",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="hidden_size",
        vocab_size="vocab_size",
    ),
    attention=ATTENTION,
    tiny_config=TINY,
    notes=NO_HEADS,
    description=(
        "GPT-Neo: transformer.h[i].{attn.attention,mlp}, transformer.ln_f, transformer.wte; alternating global "
        "and local attention. Attention probabilities; no per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT_NEO)
