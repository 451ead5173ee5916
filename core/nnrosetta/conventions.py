"""The attention declarations of transformers 5, written once for every family that follows them.

Most transformers 5 attention forwards share one shape: per-head ``query_states``,
``key_states`` and ``value_states`` are assigned, rotary is applied by
``apply_rotary_pos_emb``, and an ``attention_interface`` is called whose eager
implementation softmaxes and then applies ``nn.functional.dropout`` (the identity
in eval mode) to the probabilities it multiplies the values by. The core may know
this transformers convention; it never names a family.
"""

from __future__ import annotations

from typing import Optional

from .points import Assigned, Called, Inside
from .specs import AttentionSpec, HeadsSpec, Refusal

#: The call of the attention function (eager, sdpa, flash, ... all share its signature).
ATTENTION_CALL = Called("attention_interface")
#: Where rotary embedding is applied; per-head queries and keys are read before it.
ROTARY_CALL = Called("apply_rotary_pos_emb")

#: Eager attention's probabilities: the dropout's output inside the attention function.
ATTENTION = AttentionSpec(probabilities=Inside(ATTENTION_CALL, Called("nn.functional.dropout")))


def heads(
    output_projection: str = "o_proj",
    rotary: bool = True,
    refuse: Optional[Refusal] = None,
    before: Optional[Called] = None,
) -> HeadsSpec:
    """The per-head declaration of a transformers 5 attention forward.

    Queries and keys are the last assignments to ``query_states`` / ``key_states``
    before rotary (or before the attention call in a layer that applies no rotary;
    ``rotary=False``: always before the call; ``before`` names another point);
    values the last assignment to ``value_states`` before the call.
    """
    cut = before or ((ROTARY_CALL, ATTENTION_CALL) if rotary else ATTENTION_CALL)
    return HeadsSpec(
        output_projection=output_projection,
        attention_call=ATTENTION_CALL,
        queries=Assigned("query_states", before=cut),
        keys=Assigned("key_states", before=cut),
        values=Assigned("value_states", before=ATTENTION_CALL),
        refuse=refuse,
    )


#: The per-head declaration of a Llama-style transformers 5 attention.
HEADS = heads()


def latent_qk_head_dim(config) -> int:
    """Latent attention's query/key head size as its forward computes it: qk_nope_head_dim + qk_rope_head_dim.

    transformers 5's latent (MLA) attention forwards add the two; the config's own
    ``qk_head_dim`` is a copy made when the config is built, and ``head_dim`` is often an
    alias of ``qk_rope_head_dim``, so either can disagree with the weights of a saved or
    overridden config.
    """
    return config.qk_nope_head_dim + config.qk_rope_head_dim
