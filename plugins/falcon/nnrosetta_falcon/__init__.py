"""nnrosetta plugin for Falcon: ``transformer.h[i].{self_attention,mlp}``, ``transformer.ln_f``.

One model type, ``falcon``, several layouts, chosen by config options:

- Falcon-7B: ``multi_query=True``: one key/value head shared by every query head.
- Falcon-40B/180B/2-11B: ``new_decoder_architecture=True``: ``num_kv_heads`` grouped
  key/value heads (``query_key_value`` laid out per group), and separate ``ln_attn`` /
  ``ln_mlp`` norms (or one, ``num_ln_in_parallel_attn=1``).
- Multi-head (``multi_query=False``): ``query_key_value`` laid out per head.

All three add attention and MLP in parallel (``parallel_attn``, implied by the new
architecture): the MLP reads the layer's normalised input, not the stream after the
attention, so ``mlps_input[i]`` is no function of ``attentions_output[i]``. Rotary
attention forms its eager probabilities with ``F.softmax`` and no dropout.

Falcon-RW (RefinedWeb, ``alibi=True``, ``parallel_attn=False``) is sequential and forms
its probabilities in a second, ALiBi branch of the attention forward: a model type has
one declaration per adapter, so that layout is the adapter ``falcon_rw``
(``StandardizedTransformer(..., adapter="falcon_rw")``); ``falcon`` refuses it at load.

Per-head values are not declared (`HEADS_NOT_DECLARED`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nnrosetta import Adapter, AttentionSpec, Called, ConfigKeys, Residual, hookimpl

NNROSETTA_CONTRACT = 2

RW_ADAPTER = "falcon_rw"

#: Why neither adapter declares a `HeadsSpec`, in the words `nnrosetta adapters` shows.
HEADS_NOT_DECLARED = (
    "per-head values are not declared: FalconAttention computes its scores with `@` and F.softmax (or "
    "scaled_dot_product_attention) instead of calling a transformers attention function, which HeadsSpec "
    "needs for the rotated queries/keys and the recomputed patterns"
)

#: The parallel layer adds the attention output into the MLP's output tensor in place.
IN_PLACE_MLP_OUTPUT = (
    "the parallel layer adds the attention output into the MLP's output tensor in place "
    "(`mlp_output += attention_output`): mlps_output[i] is read as a copy taken when the MLP returns"
)

RENAME = {
    "transformer.word_embeddings": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "self_attention": "self_attn",
}

#: Falcon-7B's defaults shrunk: multi-query, parallel attention, rotary, no biases, 4x MLP.
#: num_kv_heads=1 says what multi_query means (see `_multi_query_refusal`).
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "multi_query": True,
    "num_kv_heads": 1,
    "parallel_attn": True,
    "new_decoder_architecture": False,
    "alibi": False,
    "bias": False,
}

#: The other layouts the adapter `falcon` serves, for the family tests.
TINY_NEW_DECODER = {**TINY, "new_decoder_architecture": True, "num_kv_heads": 2}
TINY_NEW_DECODER_ONE_NORM = {**TINY_NEW_DECODER, "num_ln_in_parallel_attn": 1}
TINY_MULTI_HEAD = {**TINY, "multi_query": False, "num_kv_heads": 4}
#: Falcon-RW's layout shrunk: ALiBi, multi-head, sequential, biases; served by `falcon_rw`.
TINY_RW = {**TINY_MULTI_HEAD, "alibi": True, "parallel_attn": False, "bias": True}


def _is_rw_layout(config) -> bool:
    return bool(config.alibi) and not config.parallel_attn and not config.new_decoder_architecture


def _multi_query_refusal(config) -> Optional[str]:
    if config.multi_query and not config.new_decoder_architecture and config.num_kv_heads != 1:
        return (
            f"multi_query=True: FalconAttention uses one key/value head, but config.num_kv_heads is "
            f"{config.num_kv_heads}, and nnrosetta reads num_kv_heads from that key. The attention ignores "
            f"num_kv_heads in this layout, so set it to 1: config = AutoConfig.from_pretrained(name); "
            f"config.num_kv_heads = 1; StandardizedTransformer(name, config=config)"
        )
    return None


def _falcon_refusal(config) -> Optional[str]:
    if _is_rw_layout(config):
        return (
            "alibi=True with parallel_attn=False (the Falcon-RW layout): sequential layers whose probabilities "
            f"are formed in the ALiBi branch; load it with StandardizedTransformer(..., adapter={RW_ADAPTER!r})"
        )
    if config.alibi:
        return (
            "alibi=True with parallel attention: the probabilities are formed in the ALiBi branch, which the "
            "adapter 'falcon' does not hook, and 'falcon_rw' serves only sequential ALiBi layers; no released "
            "Falcon has this layout"
        )
    if not config.parallel_attn and not config.new_decoder_architecture:
        return (
            "parallel_attn=False with rotary attention: sequential layers, while the adapter 'falcon' declares "
            "the parallel residual; no released Falcon has this layout"
        )
    return _multi_query_refusal(config)


def _rw_refusal(config) -> Optional[str]:
    if not _is_rw_layout(config):
        return (
            "only the Falcon-RW layout (alibi=True, parallel_attn=False, new_decoder_architecture=False) is "
            "served by 'falcon_rw'; load other Falcon layouts without adapter=, or with adapter='falcon'"
        )
    return _multi_query_refusal(config)


FALCON = Adapter(
    name="falcon",
    model_types=("falcon",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads="num_kv_heads"),
    attention=AttentionSpec(probabilities=Called("F.softmax")),
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    refuse=_falcon_refusal,
    mutated_in_place={"mlps_output": IN_PLACE_MLP_OUTPUT},
    notes=HEADS_NOT_DECLARED,
    description=(
        "Falcon (7B multi-query, 40B/180B/2 new decoder architecture, multi-head): transformer.h[i]."
        "{self_attention,mlp}, parallel residual, rotary; Falcon-RW is the adapter 'falcon_rw'."
    ),
)

#: Falcon-RW: the same module tree; sequential layers, probabilities after the ALiBi branch's dropout.
FALCON_RW = dataclasses.replace(
    FALCON,
    name=RW_ADAPTER,
    attention=AttentionSpec(probabilities=Called("self.attention_dropout")),
    residual=Residual(kind="sequential"),
    tiny_config={},
    mutated_in_place={},
    known_broken={},
    refuse=_rw_refusal,
    priority=-1,
    description=(
        "Falcon-RW (alibi=True, parallel_attn=False): sequential layers, ALiBi attention probabilities; "
        "chosen with adapter='falcon_rw'."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(FALCON)
    register(FALCON_RW)
