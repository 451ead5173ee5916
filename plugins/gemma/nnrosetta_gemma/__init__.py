"""nnrosetta plugin for the Gemma family: ``gemma``, ``gemma2``, ``gemma3_text``.

The module tree is Llama's (``model.layers[i].{self_attn,mlp}``, ``model.norm``,
``model.embed_tokens``), so the rename map is the same. Three things differ and
are documented in the README (section "Gemma"):

- Final projection. Gemma 2 (and Gemma 3 where its config sets it) soft-caps the
  logits: ``cap * tanh(lm_head(norm(h)) / cap)`` with ``cap =
  config.final_logit_softcapping``. `softcapped_projection` does exactly that, so
  ``project_on_vocab`` and ``get_topk_closest_tokens`` see the model's own
  distribution. Gemma 1 has no cap and gets the plain projection.
- Embedding scale. In transformers 5 the sqrt(hidden_size) scale lives inside the
  embedding module (``*ScaledWordEmbedding``), so ``token_embeddings`` (the
  module's output) is the scaled embedding: exactly what the first layer reads.
- Sandwich norms. Gemma 2/3 layers normalise around each sublayer:
  ``h + post_attention_layernorm(self_attn(input_layernorm(h)))`` and then
  ``h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)))``.
  ``attentions_output[i]`` / ``mlps_output[i]`` are the modules' own outputs, before
  the post-norms; ``mlps_input[i]`` is after ``pre_feedforward_layernorm``.

``gemma3`` (the image-text model) is served on its text path by a second adapter,
``gemma3``: the same decoder sits at ``model.language_model``, and its forward
applies no logit soft-cap, which the shared projection follows (the top-level
config carries no cap). Image inputs pass through HuggingFace unchanged; the
standard accessors describe the language model only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nnrosetta import Adapter, AttentionSpec, CallArgument, HeadLabels, HeadsSpec, hookimpl

if TYPE_CHECKING:
    from nnrosetta import StandardizedTransformer

MODEL_TYPES = ("gemma", "gemma2", "gemma3_text")

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}


def softcapped_projection(model: "StandardizedTransformer", hidden: torch.Tensor) -> torch.Tensor:
    """Logits as the family computes them: final norm, lm_head, then the soft cap if configured.

    The operations are those of ``Gemma2ForCausalLM.forward`` in the same order, so the
    result is bit-identical to the model's logits for the last layer's output.
    """
    logits = model.lm_head(model.ln_final(hidden))
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:
        logits = logits / cap
        logits = torch.tanh(logits)
        logits = logits * cap
    return logits


TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
}

#: Sliding and global layers alternate; a window of 4 tokens makes them differ on short prompts,
#: and a cap of 0.5 makes soft-capping change random-weight logits visibly.
TINY_SLIDING = {
    "sliding_window": 4,
    "layer_types": ["sliding_attention", "full_attention"],
    "final_logit_softcapping": 0.5,
    "query_pre_attn_scalar": 8,
}


#: Eager attention's probabilities: the output of the dropout (the identity in eval mode)
#: inside the attention function the forward calls at ``attention_interface_1``.
ATTENTION = AttentionSpec(probabilities=("attention_interface_1", "nn_functional_dropout_0"))

#: Per-head projections before rotary. Gemma 3 normalises q and k after assigning the
#: values, so its values are read where attention receives them (the same tensor in a
#: forward pass; with past positions when generating). Sliding-window layers and Gemma 2's
#: soft-capped attention logits live in the mask and the attention function, so the
#: probabilities above are the ones each layer actually uses.
HEAD_LABELS_BY_TYPE = {
    "gemma": HeadLabels(queries="query_states_0", keys="key_states_0", values="value_states_0"),
    "gemma2": HeadLabels(queries="query_states_0", keys="key_states_0", values="value_states_0"),
    "gemma3_text": HeadLabels(
        queries="query_states_1", keys="key_states_1", values=CallArgument("attention_interface_1", 3)
    ),
}
#: The image-text model's decoder is the same Gemma3 attention.
HEAD_LABELS_BY_TYPE["gemma3"] = HEAD_LABELS_BY_TYPE["gemma3_text"]

HEADS = HeadsSpec(
    labels=lambda config: HEAD_LABELS_BY_TYPE[config.model_type],
    output_projection="o_proj",
    attention_call="attention_interface_1",
)

GEMMA = Adapter(
    name="gemma",
    model_types=MODEL_TYPES,
    rename=RENAME,
    final_projection=softcapped_projection,
    attention=ATTENTION,
    heads=HEADS,
    tiny_configs={
        "gemma": dict(TINY),
        "gemma2": {**TINY, **TINY_SLIDING},
        "gemma3_text": {**TINY, **TINY_SLIDING},
    },
    description="Gemma 1/2/3 text decoders: soft-capped final logits, scaled embeddings, sandwich norms.",
)


#: Gemma 3's image-text model keeps the same decoder under ``model.language_model``; its
#: top-level forward applies no logit soft-cap (the text config sets none), which
#: `softcapped_projection` follows because the top-level config has no cap.
GEMMA3_MULTIMODAL = Adapter(
    name="gemma3",
    model_types=("gemma3",),
    rename={
        "model.language_model.embed_tokens": "embed_tokens",
        "model.language_model.layers": "layers",
        "model.language_model.norm": "ln_final",
    },
    final_projection=softcapped_projection,
    attention=ATTENTION,
    heads=HEADS,
    tiny_configs={
        "gemma3": {
            # The text config carries the decoder; its vocabulary matches the tiny tokenizer (384).
            "text_config": {**TINY, **TINY_SLIDING, "final_logit_softcapping": None, "vocab_size": 384,
                            "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
            "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "image_size": 28, "patch_size": 14},
            "mm_tokens_per_image": 4,
        }
    },
    description="Gemma 3 image-text model, text path: the decoder at model.language_model.",
)


@hookimpl
def register_adapters(register) -> None:
    register(GEMMA)
    register(GEMMA3_MULTIMODAL)
