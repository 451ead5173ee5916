"""nnrosetta plugin for the Llama family and every model type sharing its module tree.

These types keep their blocks at ``model.layers``, each with ``self_attn`` and
``mlp``, the final norm at ``model.norm`` and the embedding at
``model.embed_tokens``; the logits are exactly ``lm_head(norm(h))``.
"""

from __future__ import annotations

from nnrosetta import Adapter, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

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

#: What each type changes: only its tiny config, where a type's defaults do not fit the shared one.
PARTIAL_ROTARY = Variant(tiny_config={"partial_rotary_factor": 0.5})
VARIANTS = {"stablelm": PARTIAL_ROTARY, "glm": PARTIAL_ROTARY, "nemotron": PARTIAL_ROTARY}

LLAMA = Adapter(
    name="llama",
    model_types=MODEL_TYPES,
    rename=RENAME,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    tiny_config=TINY,
    variants=VARIANTS,
    description="Llama-style decoders: model.layers[i].{self_attn,mlp}, model.norm, model.embed_tokens.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LLAMA)
