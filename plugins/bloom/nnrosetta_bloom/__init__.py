"""nnrosetta plugin for BLOOM: ``transformer.h[i]``, ``transformer.word_embeddings``, ``transformer.ln_f``.

What a rename map alone gets wrong:

- Both sublayers add the residual themselves: ``BloomAttention.forward(h, residual, ...)``
  returns ``residual + dense(...)`` and ``BloomMLP.forward(h, residual)`` returns
  ``residual + dense_4h_to_h(...)``. Their module outputs are the residual stream, not
  what they add, so the standard sublayers are spans: ``self_attn`` is
  ``self_attention.query_key_value`` ... ``self_attention.dense`` and ``mlp`` is
  ``mlp.dense_h_to_4h`` ... ``mlp.dense_4h_to_h``.
- The embedding is normalised (``word_embeddings_layernorm``) before the first layer:
  ``token_embeddings`` is the raw embedding, ``layers_input[0]`` its normalised form.
- Attention adds ALiBi to its scores (``alibi.baddbmm``) and ``query_key_value`` is laid
  out per head (for each head its query, key and value side by side).

Attention probabilities and per-head values are not declared (`ATTENTION_NOT_DECLARED`).
"""

from __future__ import annotations

from typing import Optional

from nnrosetta import Adapter, ConfigKeys, Residual, Span, hookimpl

NNROSETTA_CONTRACT = 2

#: Why the adapter declares no `AttentionSpec` nor `HeadsSpec`, in the words `nnrosetta adapters` shows.
ATTENTION_NOT_DECLARED = (
    "attention probabilities and per-head values are not declared: self_attn must be a span (the attention "
    "module's output includes the residual), and the core reaches attention points only through a self_attn "
    "module; BloomAttention also calls no transformers attention function, which HeadsSpec needs"
)

RENAME = {
    "transformer.word_embeddings": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
}

SPANS = {
    "self_attn": Span("self_attention.query_key_value", "self_attention.dense"),
    "mlp": Span("mlp.dense_h_to_4h", "mlp.dense_4h_to_h"),
}

#: BLOOM's defaults shrunk: ALiBi, biases, GeLU MLP 4x wide, residual from the un-normalised stream.
TINY = {"hidden_size": 32, "n_layer": 2, "n_head": 4}


def _bloom_refusal(config) -> Optional[str]:
    if config.apply_residual_connection_post_layernorm:
        return (
            "apply_residual_connection_post_layernorm=True: each sublayer adds its normalised input instead of "
            "the residual stream, so a layer's output is not its input plus what its sublayers add, as the "
            "declaration's sequential residual says; no released BLOOM sets it and no nnrosetta adapter serves it"
        )
    if config.pretraining_tp > 1 and config.slow_but_exact:
        return (
            f"slow_but_exact=True with pretraining_tp={config.pretraining_tp}: the output projections run as "
            f"{config.pretraining_tp} slices of F.linear instead of the dense modules the sublayer spans end at; "
            "load with slow_but_exact=False (the released checkpoints' setting)"
        )
    return None


BLOOM = Adapter(
    name="bloom",
    model_types=("bloom",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    spans=SPANS,
    residual=Residual(kind="sequential"),
    tiny_config=TINY,
    refuse=_bloom_refusal,
    notes=ATTENTION_NOT_DECLARED,
    description=(
        "BLOOM: transformer.h[i], self_attn = span self_attention.query_key_value...dense, mlp = span "
        "mlp.dense_h_to_4h...dense_4h_to_h (both modules add the residual), transformer.ln_f; ALiBi."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(BLOOM)
