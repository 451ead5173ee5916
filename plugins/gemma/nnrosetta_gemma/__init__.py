"""nnrosetta plugin for the Gemma family.

Types: ``gemma``, ``gemma2``, ``gemma3_text``, ``gemma3``, ``vaultgemma``, ``gemma4_text``, ``gemma4``,
``gemma4_unified_text``, ``gemma4_unified``.

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

``vaultgemma`` is Gemma 2 without the post-norms (a plain pre-norm residual).
``gemma4_text`` adds a per-layer input branch, per-layer head sizes and layers
that reuse an earlier layer's keys and values; see its variant.

``gemma3`` (the image-text model) is served on its text path by a variant: the
same decoder sits at ``model.language_model``, and its forward applies no logit
soft-cap, which the shared projection follows (the top-level config carries no
cap). Image inputs pass through HuggingFace unchanged; the standard accessors
describe the language model only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from typing import Optional

from nnrosetta import Adapter, LayerTensor, Residual, Variant, conventions, hookimpl

if TYPE_CHECKING:
    from nnrosetta import StandardizedTransformer

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("gemma", "gemma2", "gemma3_text", "gemma3", "vaultgemma", "gemma4_text", "gemma4",
               "gemma4_unified_text", "gemma4_unified")

#: Gemma 4's multi-token-prediction drafters (a Gemma 4 text decoder run on the target model's state),
#: claimed only to be refused at load with the reason.
ASSISTANT_TYPES = ("gemma4_assistant", "gemma4_unified_assistant")
ASSISTANT_REASON = (
    "a Gemma 4 assistant is a multi-token-prediction drafter for assisted generation, not a model of a prompt: "
    "its forward ignores input_ids and raises without inputs_embeds (2 * backbone_hidden_size wide: the target "
    "model's embedding of the last token and its last hidden state, through pre_projection) and shared_kv_states "
    "(the target model's keys and values: every layer is kv-shared, with no k_proj or v_proj, and attends "
    "bidirectionally over them), and it hands post_projection(last hidden state) back to the target. No prompt "
    "alone runs it, so it has no trace, token_embeddings or logits of a prompt; load the target model (gemma4, "
    "gemma4_text, gemma4_unified) instead"
)

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


#: Gemma 4 text, shrunk with what sets it apart: sliding and global layers with their own rotary
#: (global: proportional, a quarter of the dims) and head size (8 vs 16), the per-layer input
#: embeddings (a third branch per layer), and a last layer reusing layer 1's keys and values.
TINY_GEMMA4 = {
    "num_hidden_layers": 3,
    "layer_types": ["sliding_attention", "full_attention", "full_attention"],
    "sliding_window": 4,
    "per_layer_config": {"01": {"head_dim": 16}, "02": {"head_dim": 16}},
    "rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
    },
    "hidden_size_per_layer_input": 8,
    "vocab_size_per_layer_input": 384,
    "num_kv_shared_layers": 1,
    "final_logit_softcapping": 0.5,
}


def refuse_gemma4_options(config) -> Optional[str]:
    """Gemma 4 text options outside the dense causal decoder this declaration serves."""
    if getattr(config, "enable_moe_block", False):
        return (
            "enable_moe_block=True adds a routed expert block beside each layer's MLP (router and experts outside "
            "`mlp`), which this dense declaration does not route; load a dense Gemma 4 checkpoint"
        )
    if getattr(config, "use_bidirectional_attention", None) == "all":
        return "use_bidirectional_attention='all' makes every layer attend both ways: not a causal language model"
    return None


def text_softcapped_projection(model: "StandardizedTransformer", hidden: torch.Tensor) -> torch.Tensor:
    """Gemma 4 image-text logits: the cap lives in the text config (``get_text_config()``), as its forward reads it."""
    logits = model.lm_head(model.ln_final(hidden))
    cap = model.config.get_text_config().final_logit_softcapping
    if cap is not None:
        logits = logits / cap
        logits = torch.tanh(logits)
        logits = logits * cap
    return logits


def refuse_gemma4_text_options(config) -> Optional[str]:
    """The Gemma 4 text refusals, read from the image-text model's text config."""
    return refuse_gemma4_options(config.get_text_config())


def gemma4_kv_sources(config) -> dict[int, int]:
    """Which earlier layer's keys and values each kv-shared Gemma 4 layer attends over.

    As the attention forward reads them: a ``"reuse"`` layer (``config.kv_sharing_modes``, the last
    ``num_kv_shared_layers``) takes ``shared_kv_states[layer_type]``, written by the last ``"store"``
    layer of the same type before it.
    """
    text = config.get_text_config()
    modes, types = text.kv_sharing_modes, text.layer_types
    sources = {}
    for layer, mode in enumerate(modes):
        stores = [j for j in range(layer) if modes[j] == "store" and types[j] == types[layer]]
        if mode == "reuse" and stores:
            sources[layer] = stores[-1]
    return sources


#: Gemma 4 sizes: head_dim (and the kv heads) per layer from per_layer_config; the kv-shared layers' sources.
GEMMA4_CONFIG_KEYS = {"per_layer": "per_layer_config", "kv_shared": gemma4_kv_sources}


#: Gemma 4 unified text: Gemma 4's sliding/global head sizes and kv sharing, without per-layer input embeddings.
TINY_GEMMA4_UNIFIED = {
    **TINY,
    "num_hidden_layers": 3,
    "layer_types": ["sliding_attention", "full_attention", "full_attention"],
    "sliding_window": 4,
    "per_layer_config": {"01": {"head_dim": 16}, "02": {"head_dim": 16}},
    "num_kv_shared_layers": 1,
    "final_logit_softcapping": 0.5,
    "use_bidirectional_attention": None,
}


#: The unified layer multiplies its sandwich sum by a loaded `layer_scalar` buffer (1 at init, so the tiny
#: model passes residual_sum); Residual cannot declare that factor.
GEMMA4_UNIFIED_NOTES = (
    "sandwich norms; q/k/v norms; layers_output[i] is the sandwich sum times the layer's loaded layer_scalar "
    "buffer (Residual cannot declare it: residual_sum can fail on a checkpoint whose layer_scalar is not 1); heads "
    "are not served: head sizes differ between sliding and global layers (per_layer_config) and kv-shared layers "
    "reuse an earlier layer's keys and values"
)


#: Gemma 2/3 normalise each sublayer's output before adding it to the residual stream.
SANDWICH = Residual(kind="sandwich", attention_post_norm="post_attention_layernorm",
                    mlp_post_norm="post_feedforward_layernorm")

#: Gemma 4: the sandwich, then a third branch (the per-layer input: gate, times the per-layer embedding,
#: projection, post_per_layer_input_norm), and the layer's sum times its loaded `layer_scalar` buffer.
GEMMA4_RESIDUAL = Residual(kind="sandwich", attention_post_norm="post_attention_layernorm",
                           mlp_post_norm="post_feedforward_layernorm", layer_terms=("post_per_layer_input_norm",),
                           output_scale=LayerTensor("layer_scalar"))

#: Sliding-window layers and Gemma 2's soft-capped attention logits live in the mask and the
#: attention function, so the convention's probabilities are the ones each layer uses.
GEMMA = Adapter(
    name="gemma",
    model_types=MODEL_TYPES + ASSISTANT_TYPES,
    rename=RENAME,
    final_projection=softcapped_projection,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    residual=SANDWICH,
    tiny_config=TINY,
    variants={
        "gemma": Variant(residual=Residual()),
        "gemma2": Variant(tiny_config=TINY_SLIDING),
        "gemma3_text": Variant(tiny_config=TINY_SLIDING),
        "vaultgemma": Variant(
            residual=Residual(),
            tiny_config={**TINY_SLIDING, "attn_logit_softcapping": 2.0},
            notes="Gemma 2 without the post-norms: a plain pre-norm residual; soft-capped attention and logits",
        ),
        "gemma4_text": Variant(
            residual=GEMMA4_RESIDUAL,
            heads=None,
            config_keys=GEMMA4_CONFIG_KEYS,
            tiny_config=TINY_GEMMA4,
            refuse=refuse_gemma4_options,
            notes="sandwich norms; q/k/v norms; per-layer input embeddings feed a third residual branch (inside "
            "layers_output[i], outside mlps_output[i]); output times layer_scalar; heads are not served: head "
            "sizes differ between sliding and global layers (per_layer_config) and kv-shared layers reuse an "
            "earlier layer's keys and values instead of projecting their own",
        ),
        "gemma3": Variant(
            rename={
                "model.embed_tokens": None,
                "model.layers": None,
                "model.norm": None,
                "model.language_model.embed_tokens": "embed_tokens",
                "model.language_model.layers": "layers",
                "model.language_model.norm": "ln_final",
            },
            tiny_config={
                # The text config carries the decoder; its vocabulary matches the tiny tokenizer (384).
                "text_config": {**TINY, **TINY_SLIDING, "final_logit_softcapping": None, "vocab_size": 384,
                                "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
                "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "image_size": 28, "patch_size": 14},
                "mm_tokens_per_image": 4,
            },
            notes="image-text model, text path: the decoder at model.language_model; no logit soft-cap",
        ),
        "gemma4": Variant(
            rename={
                "model.embed_tokens": None,
                "model.layers": None,
                "model.norm": None,
                "model.language_model.embed_tokens": "embed_tokens",
                "model.language_model.layers": "layers",
                "model.language_model.norm": "ln_final",
            },
            final_projection=text_softcapped_projection,
            residual=GEMMA4_RESIDUAL,
            heads=None,
            config_keys=GEMMA4_CONFIG_KEYS,
            refuse=refuse_gemma4_text_options,
            tiny_config={
                "text_config": {**TINY, **TINY_GEMMA4, "vocab_size": 384,
                                "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
                "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8},
                "audio_config": None,
                # The family's shrunk sizes are also written at the top; keep the layer count the text one.
                "num_hidden_layers": TINY_GEMMA4["num_hidden_layers"],
                "head_dim": None,  # per layer in Gemma 4: only the text config may say it
            },
            notes="image-text(-audio) model, text path: the Gemma 4 text decoder at model.language_model, with "
            "gemma4_text's limits; the logit soft-cap is read from the text config, as the forward does",
        ),
        "gemma4_unified_text": Variant(
            heads=None,
            config_keys=GEMMA4_CONFIG_KEYS,
            tiny_config=TINY_GEMMA4_UNIFIED,
            refuse=refuse_gemma4_options,
            notes=GEMMA4_UNIFIED_NOTES,
        ),
        "gemma4_unified": Variant(
            rename={
                "model.embed_tokens": None,
                "model.layers": None,
                "model.norm": None,
                "model.language_model.embed_tokens": "embed_tokens",
                "model.language_model.layers": "layers",
                "model.language_model.norm": "ln_final",
            },
            final_projection=text_softcapped_projection,
            heads=None,
            config_keys=GEMMA4_CONFIG_KEYS,
            refuse=refuse_gemma4_text_options,
            tiny_config={
                "text_config": {**TINY_GEMMA4_UNIFIED, "vocab_size": 384,
                                "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
                "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2},
                "audio_config": None,
                "num_hidden_layers": TINY_GEMMA4_UNIFIED["num_hidden_layers"],
                "head_dim": None,
            },
            notes="image-text(-audio) model, text path: the gemma4_unified_text decoder at model.language_model; "
            "soft-cap read from the text config; " + GEMMA4_UNIFIED_NOTES,
        ),
        "gemma4_assistant": Variant(unsupported=ASSISTANT_REASON),
        "gemma4_unified_assistant": Variant(unsupported=ASSISTANT_REASON),
    },
    description="Gemma 1/2/3 decoders: soft-capped final logits, scaled embeddings, sandwich norms.",
)


@hookimpl
def register_adapters(register) -> None:
    register(GEMMA)
