"""nnrosetta plugin for Granite MoE: ``model.layers[i].block_sparse_moe`` is the standard ``mlp``.

- Parallel experts: ``block_sparse_moe.router`` returns ``(logits, weights, indices)``
  with a softmax over the top-k logits; ``block_sparse_moe.experts`` holds every
  expert's fused ``gate_up_proj`` / ``down_proj`` (the routed tokens of all experts run
  as one batched computation in the original Granite/JetMoE ParallelExperts design).
- muP: layer 0 reads ``embed_tokens`` times ``embedding_multiplier``; each sublayer's
  output is added times ``residual_multiplier``; logits are divided by ``logits_scaling``.
- granitemoeshared / granitemoe_swa with ``shared_intermediate_size > 0``: the layer adds
  ``(block_sparse_moe(h) + shared_mlp(h)) * residual_multiplier``; no module outputs that sum,
  so ``mlps_output[i]`` is the routed block alone, ``shared_experts_output`` is not served
  (``shared_mlp`` is the block's sibling), and the residual declares ``shared_mlp`` a term of
  the MLP's add (``mlp_terms``; absent on layers without one, as in plain Granite MoE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnrosetta import Adapter, AttentionSpec, MoESpec, Residual, Variant, conventions, hookimpl
from nnrosetta.points import Called, Inside

if TYPE_CHECKING:
    import torch

    from nnrosetta import StandardizedTransformer

NNROSETTA_CONTRACT = 2


def divided_by_logits_scaling(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Granite (muP): ``lm_head(norm(h)) / config.logits_scaling``."""
    return model.lm_head(model.ln_final(hidden)) / model.config.logits_scaling


#: muP factors set far from 1, so dropping one fails.
MULTIPLIERS = {"embedding_multiplier": 3.0, "residual_multiplier": 0.3, "logits_scaling": 4.0,
               "attention_multiplier": 0.5}

TINY = {
    "hidden_size": 32,
    "intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    **MULTIPLIERS,
}

#: The layer adds (block_sparse_moe(h) + shared_mlp(h)) * residual_multiplier; no module outputs that sum.
SHARED_MLP_NOTES = (
    "mlps_output[i] is the routed block alone; the layer adds it together with its sibling shared_mlp "
    "(a residual term of the MLP's add), both times residual_multiplier"
)

GRANITE_SWA_ATTENTION = AttentionSpec(probabilities=Inside(conventions.ATTENTION_CALL, Called("F.dropout")))

GRANITEMOE = Adapter(
    name="granitemoe",
    model_types=("granitemoe", "granitemoeshared", "granitemoe_swa"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final",
            "block_sparse_moe": "mlp"},
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    moe=MoESpec(router="router", normalize_top_k=True),
    residual=Residual(scale_key="residual_multiplier", mlp_terms=("shared_mlp",)),
    final_projection=divided_by_logits_scaling,
    tiny_config=TINY,
    variants={
        "granitemoeshared": Variant(tiny_config={"shared_intermediate_size": 16}, notes=SHARED_MLP_NOTES),
        "granitemoe_swa": Variant(
            attention=GRANITE_SWA_ATTENTION,
            tiny_config={"shared_intermediate_size": 16, "sliding_window": 4,
                         "layer_types": ["full_attention", "sliding_attention"]},
            notes="per-layer sliding windows; attention_probabilities[i] is the softmax over real keys, each "
            "query's output then scaled by its learned sink; " + SHARED_MLP_NOTES,
        ),
    },
    description="Granite MoE: block_sparse_moe as mlp (router -> (logits, weights, indices), fused experts), muP.",
)


@hookimpl
def register_adapters(register) -> None:
    register(GRANITEMOE)
