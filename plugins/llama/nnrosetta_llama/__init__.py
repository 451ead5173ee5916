"""nnrosetta plugin for the Llama family and every model type sharing its module tree.

These types keep their blocks at ``model.layers``, each with ``self_attn`` and
``mlp``, the final norm at ``model.norm`` and the embedding at
``model.embed_tokens``; the logits are exactly ``lm_head(norm(h))``.
"""

from __future__ import annotations

from nnrosetta import Adapter, hookimpl

#: Model types whose HuggingFace module tree matches Llama's (each proven by the tests).
MODEL_TYPES = (
    "llama",
    "mistral",
    "ministral",
    "qwen2",
    "qwen3",
    "olmo",
    "olmo2",
    "olmo3",
    "phi3",
    "stablelm",
    "smollm3",
    "helium",
    "starcoder2",
    "glm",
    "seed_oss",
    "arcee",
    "apertus",
    "ernie4_5",
    "nemotron",
)

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
}

#: Per-type changes to the shared tiny config, where a type's defaults do not fit it.
TINY_OVERRIDES: dict[str, dict] = {
    "stablelm": {"partial_rotary_factor": 0.5},
    "glm": {"partial_rotary_factor": 0.5},
    "nemotron": {"partial_rotary_factor": 0.5},
}

LLAMA = Adapter(
    name="llama",
    model_types=MODEL_TYPES,
    rename=RENAME,
    tiny_configs={t: {**TINY, **TINY_OVERRIDES.get(t, {})} for t in MODEL_TYPES},
    description="Llama-style decoders: model.layers[i].{self_attn,mlp}, model.norm, model.embed_tokens.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LLAMA)
