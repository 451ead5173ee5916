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

Attention probabilities and per-head values are read inside ``self_attention``'s forward
(``AttentionSpec``/``HeadsSpec(module="self_attention")``): the attention dropout's
output, and the per-head split of ``query_key_value``; head outputs are
``self_attention.dense``'s input.
"""

from __future__ import annotations

from typing import Optional

from nnrosetta import Adapter, AttentionSpec, Called, ConfigKeys, HeadsSpec, Residual, Span, hookimpl

NNROSETTA_CONTRACT = 2

#: The attention forward is ``self_attention``'s, the module the ``self_attn`` span starts in.
ATTENTION_MODULE = "self_attention"

#: Eager or not, BLOOM forms its probabilities itself: the attention dropout's output
#: (the identity in eval mode), (batch, heads, q, k), is what ``torch.bmm`` multiplies the values by.
ATTENTION = AttentionSpec(probabilities=Called("self.attention_dropout"), module=ATTENTION_MODULE)

#: ``query_key_value`` is laid out per head; no rotary (ALiBi biases the scores), so the split
#: heads are what the scores use. Attention is written by hand (``alibi.baddbmm``, ``torch.bmm``):
#: no attention call, so no rotated values nor recomputed patterns.
HEADS = HeadsSpec(
    module=ATTENTION_MODULE,
    output_projection=f"{ATTENTION_MODULE}.dense",
    attention_call=None,
    fused_projection="query_key_value",
    fused_layout="per_head",
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
    attention=ATTENTION,
    heads=HEADS,
    residual=Residual(kind="sequential"),
    tiny_config=TINY,
    refuse=_bloom_refusal,
    description=(
        "BLOOM: transformer.h[i], self_attn = span self_attention.query_key_value...dense, mlp = span "
        "mlp.dense_h_to_4h...dense_4h_to_h (both modules add the residual), transformer.ln_f; ALiBi; "
        "attention probabilities and per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(BLOOM)
