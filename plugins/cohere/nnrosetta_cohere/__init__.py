"""nnrosetta plugin for Cohere's Command decoders: ``cohere``, ``cohere2``, ``cohere2_moe``.

The module tree is Llama's (``model.layers[i].{self_attn,mlp}``, ``model.norm``,
``model.embed_tokens``). Three things differ:

- Parallel layers. One ``input_layernorm`` feeds attention and MLP, and both outputs
  are added to the residual stream at once (``Residual(kind="parallel")``):
  ``mlps_input[i]`` is ``attentions_input[i]``, not a function of
  ``layers_input[i] + attentions_output[i]``.
- Scaled logits. ``CohereForCausalLM`` multiplies ``lm_head``'s output by
  ``config.logit_scale``; `scaled_projection` does the same, so ``project_on_vocab``
  and the logit lens see the model's own distribution.
- ``cohere2`` / ``cohere2_moe`` mix sliding-window and full-attention layers
  (``config.layer_types``); only the sliding ones apply rotary (full layers have no
  position encoding), so queries and keys are read before rotary where a layer
  applies it and before the attention call where it does not. In ``cohere2_moe``
  dense prefix layers (``mlp_layer_types == "dense"``) force rotary too.

``cohere2_moe`` routes like Mixtral: the router at ``mlp.gate`` returns
``(logits, weights, indices)`` and the fused experts at ``mlp.experts`` compute the
tokens with those weights and indices. The k weights sum to 1 with softmax selection
and with sigmoid selection under ``norm_topk_prob``; expert ablation renormalises the
kept weights exactly then (`normalizes_top_k`). Its optional shared experts
(``num_shared_experts > 0``, none by default) are not exposed as ``shared_experts_output``:
the module exists only for some configs, and an MoE declaration names it for every one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nnrosetta import Adapter, MoESpec, Residual, Variant, conventions, hookimpl

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from nnrosetta import StandardizedTransformer

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("cohere", "cohere2", "cohere2_moe")

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}


def scaled_projection(model: "StandardizedTransformer", hidden: torch.Tensor) -> torch.Tensor:
    """Logits as the family computes them: final norm, lm_head, then times ``config.logit_scale``.

    The operations are those of ``CohereForCausalLM.forward`` in the same order, so the
    result is bit-identical to the model's logits for the last layer's output.
    """
    logits = model.lm_head(model.ln_final(hidden))
    logits = logits * model.config.logit_scale
    return logits


def normalizes_top_k(config: "PretrainedConfig") -> bool:
    """Whether the k routing weights sum to 1: softmax over the top-k logits always does;
    sigmoid selection only with ``norm_topk_prob`` (Cohere2MoeTopKRouter.forward)."""
    return config.expert_selection_fn == "softmax" or bool(config.norm_topk_prob)


TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    # The config default (0.0625): 16x below 1, so a projection that drops it is visibly wrong.
    "logit_scale": 0.0625,
}

#: One sliding-window and one full-attention layer; a 4-token window makes them differ on the probes.
TINY_SLIDING = {"sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"]}

#: A dense prefix layer (full attention, forced rotary) then two routed layers, sliding and full
#: (no rotary): every kind of cohere2_moe layer. 4 experts, 2 per token, softmax selection.
TINY_MOE = {
    "num_hidden_layers": 3,
    "head_dim": 8,
    "intermediate_size": 24,
    "layer_types": ["full_attention", "sliding_attention", "full_attention"],
    "mlp_layer_types": ["dense", "sparse", "sparse"],
    "prefix_dense_intermediate_size": 48,
    "sliding_window": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
}

#: Renormalised exactly when the router's weights sum to 1 (`normalizes_top_k`).
MOE = MoESpec(num_experts_key="num_experts", experts_per_token_key="num_experts_per_tok", normalize_top_k=normalizes_top_k)

COHERE = Adapter(
    name="cohere",
    model_types=MODEL_TYPES,
    rename=RENAME,
    final_projection=scaled_projection,
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    variants={
        "cohere": Variant(notes="parallel attention and MLP; logits times logit_scale; optional per-head q/k norm"),
        "cohere2": Variant(
            tiny_config=TINY_SLIDING,
            notes="sliding-window layers with rotary, full-attention layers without position encoding",
        ),
        "cohere2_moe": Variant(
            moe=MOE,
            tiny_config=TINY_MOE,
            notes="cohere2 layers with Mixtral-style routed experts (mlp.gate, mlp.experts); dense prefix layers",
        ),
    },
    description="Cohere Command decoders: parallel attention and MLP, logits times logit_scale, sliding layers.",
)


@hookimpl
def register_adapters(register) -> None:
    register(COHERE)
