"""nnrosetta plugin for Phi-1/Phi-2 (``phi``), Persimmon (``persimmon``) and Fuyu's text path (``fuyu``).

Both keep their blocks at ``model.layers``, the final norm at
``model.final_layernorm``, the embedding at ``model.embed_tokens``; each layer has
``self_attn`` (output projection ``dense``) and ``mlp``; logits are exactly
``lm_head(final_layernorm(h))``. Both rotate only the first
``partial_rotary_factor * head_dim`` dimensions of each head: ``queries[i]`` /
``keys[i]`` are the full head vectors before rotary, and the dimensions past the
rotary ones reach the attention unchanged.

- ``phi``: one ``input_layernorm`` feeds attention and MLP in parallel and both
  outputs are added to the residual stream at once (``Residual(kind="parallel")``):
  ``mlps_input[i]`` is ``attentions_input[i]``, not a function of
  ``layers_input[i] + attentions_output[i]``. The optional per-head q/k LayerNorm
  (``qk_layernorm=True``) is served too: queries and keys are read after it.
- ``persimmon``: sequential pre-norm layers; queries, keys and values come out of
  one fused ``query_key_value`` projection and the q/k LayerNorm (on by default)
  runs per head after the split, so the per-head values are read at the
  assignments after that norm (the fused projection's output would be before it).
"""

from __future__ import annotations

from nnrosetta import Adapter, Residual, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("phi", "persimmon", "fuyu")

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.final_layernorm": "ln_final",
}

#: Both types keep their config default partial_rotary_factor of 0.5: 4 of 8 head dimensions rotate.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "partial_rotary_factor": 0.5,
}

PHI = Adapter(
    name="phi",
    model_types=MODEL_TYPES,
    rename=RENAME,
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="dense"),
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    variants={
        "phi": Variant(
            tiny_config={"num_key_value_heads": 2},
            notes="parallel attention and MLP on one input_layernorm; partial rotary",
        ),
        "persimmon": Variant(
            # No grouped-query attention and no head_dim key: every size follows hidden_size / heads.
            config_keys={"num_kv_heads": None, "head_dim": None},
            residual=Residual(kind="sequential"),
            tiny_config={"qk_layernorm": True},
            notes="fused query_key_value split per head, q/k LayerNorm after the split; partial rotary",
        ),
        "fuyu": Variant(
            # The image-text model: Persimmon's decoder at model.language_model, image patches projected into it.
            rename={
                "model.embed_tokens": None,
                "model.layers": None,
                "model.final_layernorm": None,
                "model.language_model.embed_tokens": "embed_tokens",
                "model.language_model.layers": "layers",
                "model.language_model.final_layernorm": "ln_final",
            },
            config_keys={"num_kv_heads": None, "head_dim": None},
            residual=Residual(kind="sequential"),
            tiny_config={
                "text_config": {**TINY, "qk_layernorm": True, "vocab_size": 384,
                                "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
                "patch_size": 4,
            },
            notes="image-text model, text path: the Persimmon decoder at model.language_model (fused "
            "query_key_value, q/k LayerNorm, partial rotary); image patches pass through HuggingFace unchanged",
        ),
    },
    description="Phi-1/2 and Persimmon: model.layers[i].{self_attn,mlp}, model.final_layernorm; partial rotary.",
)


@hookimpl
def register_adapters(register) -> None:
    register(PHI)
