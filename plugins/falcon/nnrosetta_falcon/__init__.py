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
one declaration per adapter, so that layout is the adapter ``falcon_rw``: ``falcon``
refuses it, and loading picks the type's next claimant that accepts the config.

Per-head queries, keys, values and head outputs are served on every layout, split out
of ``query_key_value`` per key/value group (attention is computed by hand: no rotated
values or recomputed patterns).
Multi-query configs report one key/value head whatever ``num_kv_heads`` says.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nnrosetta import Adapter, AttentionSpec, Called, ConfigKeys, HeadsSpec, Residual, hookimpl

NNROSETTA_CONTRACT = 2

RW_ADAPTER = "falcon_rw"

#: Every Falcon layout packs ``query_key_value`` per key/value group: the group's queries, then its
#: key, then its value (multi-query: one group of all heads; multi-head: a group per head; the new
#: decoder architecture: num_kv_heads groups), so one grouped split serves them all, before rotary.
#: Attention is computed by hand (``@`` and F.softmax, or scaled_dot_product_attention), so there
#: is no attention call; ``dense``'s input is the concatenated head outputs in every branch.
HEADS = HeadsSpec(
    output_projection="dense",
    attention_call=None,
    fused_projection="query_key_value",
    fused_layout="grouped",
)


def _kv_heads(config) -> int:
    """Multi-query Falcon (7B) uses one key/value head whatever ``num_kv_heads`` says (its config leaves
    it at the number of query heads); the other layouts use ``num_kv_heads``."""
    return 1 if config.multi_query and not config.new_decoder_architecture else config.num_kv_heads


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

#: Falcon-7B's defaults shrunk: multi-query, parallel attention, rotary, no biases, 4x MLP;
#: num_kv_heads left at its default (the number of query heads), as Falcon-7B's own config has it.
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "multi_query": True,
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
    return None


def _rw_refusal(config) -> Optional[str]:
    if not _is_rw_layout(config):
        return (
            "only the Falcon-RW layout (alibi=True, parallel_attn=False, new_decoder_architecture=False) is "
            "served by 'falcon_rw'; load other Falcon layouts without adapter=, or with adapter='falcon'"
        )
    return None


FALCON = Adapter(
    name="falcon",
    model_types=("falcon",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=_kv_heads),
    attention=AttentionSpec(probabilities=Called("F.softmax")),
    heads=HEADS,
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    refuse=_falcon_refusal,
    mutated_in_place={"mlps_output": IN_PLACE_MLP_OUTPUT},
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
    refuse=_rw_refusal,
    priority=-1,
    description=(
        "Falcon-RW (alibi=True, parallel_attn=False): sequential layers, ALiBi attention probabilities; "
        "chosen when 'falcon' refuses the config."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(FALCON)
    register(FALCON_RW)
