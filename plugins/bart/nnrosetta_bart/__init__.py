"""nnrosetta plugin for the decoders of sequence-to-sequence models that transformers ships as causal LMs.

Every served type keeps its decoder at ``model.decoder`` (a ``*DecoderWrapper``):
``layers[i]`` has ``self_attn``, a cross-attention (``encoder_attn``, unused: a
causal LM passes no encoder states, so the layer skips it) and an MLP made of
``fc1`` ... ``fc2`` with no module around it (a span). One family declaration
(`BART`) holds what they share; each type's `Variant` says only what differs:

- post-norm types (bart, marian, blenderbot-small, plbart, mvp, trocr) end each
  sublayer in its own LayerNorm and have no final norm (``ln_final`` absent);
- pre-norm types (mbart, pegasus, blenderbot, bigbird_pegasus, whisper) normalise
  each sublayer's input and the last layer's output once (``ln_final``);
- the head is ``lm_head`` except TrOCR's ``output_projection`` and Whisper's ``proj_out``.

``token_embeddings`` is ``embed_tokens``' output: scaled by sqrt(d_model) where the
module scales (the ``*ScaledWordEmbedding`` types), unscaled where the decoder
multiplies afterwards (marian, pegasus, mvp). Learned or sinusoidal positions are
added after it, before the first layer.
"""

from __future__ import annotations

from typing import Mapping, Optional

from nnrosetta import Adapter, ConfigKeys, Residual, Span, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

SERVED_TYPES = (
    "bart",
    "mbart",
    "marian",
    "pegasus",
    "blenderbot",
    "blenderbot-small",
    "plbart",
    "mvp",
    "bigbird_pegasus",
    "trocr",
    "whisper",
)
MODEL_TYPES = SERVED_TYPES + ("prophetnet",)

RENAME = {
    "model.decoder.embed_tokens": "embed_tokens",
    "model.decoder.layers": "layers",
    "lm_head": "lm_head",
}

NO_FINAL_NORM = (
    "post-norm layers: each sublayer ends in its own LayerNorm and the last layer's output goes straight "
    "into the head, so there is no final norm"
)

#: Both stacks are sized: the causal LM builds only the decoder, but the configs size both.
TINY = {
    "d_model": 32,
    "decoder_layers": 2,
    "decoder_attention_heads": 4,
    "decoder_ffn_dim": 64,
    "encoder_layers": 2,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "max_position_embeddings": 128,
    "decoder_start_token_id": 1,
    # The generation default of several of these configs forces EOS at the last step, over any edit.
    "forced_eos_token_id": None,
}

#: Decoders that count positions as arange(seq) whatever the mask (they take no position_ids): a
#: left-padded prompt sits at other positions than alone, in plain HF too (declared, and checked so).
ARANGE_POSITIONS = (
    "the decoder numbers positions arange(seq_length) itself and takes no position_ids, so left padding moves "
    "every real token of a padded row to a later learned or sinusoidal position than the same prompt alone; "
    "the plain HuggingFace model does the same"
)

#: The legacy attention of MVP and TrOCR: no attention interface, probabilities in (batch * heads, q, k).
LEGACY_ATTENTION = (
    "its attention computes the probabilities inline as a (batch * heads, q, k) tensor (torch.bmm, no "
    "attention interface), a layout the core's AttentionSpec and HeadsSpec cannot point at"
)


def post_norm(**changes) -> Variant:
    """A post-norm decoder: no final norm, nothing added to the residual stream as is; arange positions."""
    return Variant(
        absent={"ln_final": NO_FINAL_NORM}, residual=Residual(kind="post_norm"),
        not_padding_invariant=ARANGE_POSITIONS, **changes,
    )


def pre_norm(
    final_norm: str = "model.decoder.layer_norm", rename: Optional[Mapping[str, Optional[str]]] = None, **changes
) -> Variant:
    """A pre-norm decoder: each sublayer adds its output as is; ``final_norm`` normalises the last output.

    Positions are counted arange(seq) (`ARANGE_POSITIONS`) unless ``not_padding_invariant`` says otherwise.
    """
    changes.setdefault("not_padding_invariant", ARANGE_POSITIONS)
    return Variant(rename={**(rename or {}), final_norm: "ln_final"}, residual=Residual(), **changes)


VARIANTS = {
    "bart": post_norm(tiny_config={"scale_embedding": True}),
    "mbart": pre_norm(tiny_config={"scale_embedding": True}),
    "marian": post_norm(),
    "pegasus": pre_norm(),
    "blenderbot": pre_norm(tiny_config={"scale_embedding": True}),
    "blenderbot-small": post_norm(),
    "plbart": post_norm(tiny_config={"scale_embedding": True}),
    "mvp": post_norm(
        attention=None,
        heads=None,
        tiny_config={"use_prompt": True, "prompt_length": 3, "prompt_mid_dim": 16},
        notes=f"attention probabilities and heads not served: {LEGACY_ATTENTION}",
    ),
    "bigbird_pegasus": pre_norm(
        final_norm="model.decoder.layernorm_embedding",
        notes="the final norm is named layernorm_embedding",
    ),
    "trocr": post_norm(
        rename={"lm_head": None, "output_projection": "lm_head"},
        attention=None,
        heads=None,
        tiny_config={"hidden_size": 32, "layernorm_embedding": True, "scale_embedding": True},
        notes=f"head: output_projection; attention probabilities and heads not served: {LEGACY_ATTENTION}",
    ),
    "whisper": pre_norm(
        rename={"lm_head": None, "proj_out": "lm_head"},
        tiny_config={"max_target_positions": 128, "max_source_positions": 16, "num_mel_bins": 8},
        not_padding_invariant=None,
        notes="head: proj_out; positions from the position_ids passed (left padding is served)",
    ),
    "prophetnet": Variant(
        unsupported=(
            "ProphetNet's decoder layers carry the main stream and config.ngram predicting streams "
            "concatenated along the sequence axis ((1 + ngram) * seq positions per layer), and its logits "
            "are read from the first predicting stream, not from the main stream: layers_output[i] would not "
            "be (batch, seq, hidden) and no projection of the main stream is the model's prediction"
        )
    ),
}

BART = Adapter(
    name="bart",
    model_types=MODEL_TYPES,
    rename=RENAME,
    config_keys=ConfigKeys(
        num_layers="decoder_layers",
        num_heads="decoder_attention_heads",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="d_model",
    ),
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="out_proj", rotary=False),
    spans={"mlp": Span("fc1", "fc2")},
    tiny_config=TINY,
    variants=VARIANTS,
    description=(
        "Decoders of seq2seq models as causal LMs: model.decoder.layers[i].{self_attn, fc1..fc2}; "
        "post-norm types have no final norm, pre-norm ones model.decoder.layer_norm."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(BART)
