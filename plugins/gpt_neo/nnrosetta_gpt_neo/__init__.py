"""nnrosetta plugin for GPT-Neo: ``transformer.h[i].{attn.attention,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

GPT-Neo alternates global and local attention (``config.attention_layers``, from
``attention_types``): a local layer's query sees only the previous
``window_size`` tokens. Both kinds are the same module class
(``GPTNeoSelfAttention``) behind a thin ``GPTNeoAttention`` wrapper; ``self_attn``
is the inner module, whose forward computes attention in its own ``_attn``:
no scaling by 1/sqrt(head_dim), the causal and local masks from its ``bias``
buffer, then softmax and ``attn_dropout``. The probabilities are served there,
and per-head values from the split ``query``/``key``/``value`` it receives (`HEADS`). Like GPT-2, ``token_embeddings``
is ``wte``'s output alone; layer 0 reads it plus the learned position embedding.
"""

from __future__ import annotations

from nnrosetta import Adapter, Assigned, AttentionSpec, Called, ConfigKeys, HeadsSpec, Inside, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "attn.attention": "self_attn",
}

#: The family's own attention function: ``self._attn(query, key, value, mask)``.
ATTN_CALL = Called("self._attn")
#: The probabilities ``_attn`` multiplies the values by: its dropout module's output (eager only).
ATTENTION = AttentionSpec(probabilities=Inside(ATTN_CALL, Called("self.attn_dropout")))

#: The forward's own split heads, as ``_attn`` receives them (no rotary). ``attention_call`` stays
#: None: ``_attn`` does not scale its scores and takes the local window from its ``bias`` buffer, so
#: patterns recomputed the transformers way (1/sqrt(head_dim), the mask argument) would be other values.
HEADS = HeadsSpec(
    output_projection="out_proj",
    attention_call=None,
    queries=Assigned("query", before=ATTN_CALL),
    keys=Assigned("key", before=ATTN_CALL),
    values=Assigned("value", before=ATTN_CALL),
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
    heads=HEADS,
    tiny_config=TINY,
    description=(
        "GPT-Neo: transformer.h[i].{attn.attention,mlp}, transformer.ln_f, transformer.wte; alternating global "
        "and local attention. Attention probabilities and per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPT_NEO)
