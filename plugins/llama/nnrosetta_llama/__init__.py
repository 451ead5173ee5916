"""nnrosetta plugin for the Llama family and every model type sharing its module tree.

These types keep their blocks at ``model.layers``, each with ``self_attn`` and
``mlp``, the final norm at ``model.norm`` and the embedding at
``model.embed_tokens``; the logits are exactly ``lm_head(norm(h))``.
"""

from __future__ import annotations

from nnrosetta import Adapter, AttentionSpec, CallArgument, HeadLabels, HeadsSpec, hookimpl

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

#: Eager attention's probabilities: the output of the dropout (the identity in eval mode)
#: inside the attention function the forward calls at ``attention_interface_1``.
ATTENTION = AttentionSpec(probabilities=("attention_interface_1", "nn_functional_dropout_0"))

#: Where each type's forward last assigns the per-head (batch, heads, seq, head_dim)
#: projections before rotary (after the q/k norms of qwen3, olmo2, olmo3, apertus, stablelm).
#: Apertus and stablelm with qk_layernorm assign their values before normalising q and k,
#: so their values are read where attention receives them (the same tensor in a forward
#: pass; with past positions when generating).
HEAD_LABELS = HeadLabels(queries="query_states_0", keys="key_states_0", values="value_states_0")
HEAD_LABELS_AFTER_RESHAPE = HeadLabels(queries="query_states_1", keys="key_states_1", values="value_states_1")
HEAD_LABELS_BY_TYPE = {
    "olmo": HEAD_LABELS_AFTER_RESHAPE,
    "olmo2": HEAD_LABELS_AFTER_RESHAPE,
    "olmo3": HEAD_LABELS_AFTER_RESHAPE,
    "phi3": HEAD_LABELS_AFTER_RESHAPE,
    "apertus": HeadLabels(
        queries="query_states_1", keys="key_states_1", values=CallArgument("attention_interface_1", 3)
    ),
}


def head_labels(config) -> HeadLabels:
    """The labels for this config: by model type; stablelm's optional q/k layernorm adds one assignment."""
    if config.model_type == "stablelm":
        if getattr(config, "qk_layernorm", False):
            return HeadLabels(
                queries="query_states_2", keys="key_states_2", values=CallArgument("attention_interface_1", 3)
            )
        return HEAD_LABELS_AFTER_RESHAPE
    return HEAD_LABELS_BY_TYPE.get(config.model_type, HEAD_LABELS)


HEADS = HeadsSpec(labels=head_labels, output_projection="o_proj", attention_call="attention_interface_1")

LLAMA = Adapter(
    name="llama",
    model_types=MODEL_TYPES,
    rename=RENAME,
    attention=ATTENTION,
    heads=HEADS,
    tiny_configs={t: {**TINY, **TINY_OVERRIDES.get(t, {})} for t in MODEL_TYPES},
    description="Llama-style decoders: model.layers[i].{self_attn,mlp}, model.norm, model.embed_tokens.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LLAMA)
