"""nnrosetta plugin for Mamba-2 hybrids: state-space layers beside softmax attention layers.

transformers 5 names each layer by its cache: ``"linear_attention"`` for a layer that
keeps a recurrent state. In these families that layer is a Mamba-2 mixer, so the adapter
maps it to `STATE_SPACE` (never the core, never by class name).

- ``bamba``: each layer a Mamba-2 mixer at ``mamba`` or an attention at ``self_attn``
  (``attn_layer_indices``), then ``feed_forward``;
- ``granitemoehybrid``: Granite's muP (``residual_multiplier`` on each sublayer, logits divided
  by ``logits_scaling``), MLP at ``shared_mlp``; configs with routed experts are refused:
  their MLP is ``block_sparse_moe(x) + shared_mlp(x)``, two modules summed, no single module or span;
- ``nemotron_h``: every block is ``h + mixer(norm(h))`` with ``mixer`` a Mamba-2 mixer, an
  attention, an MLP or an MoE (``layers_block_type``); MLP and MoE blocks are `MLP_ONLY`
  layers whose ``mlps_*[i]`` is the mixer module. Probabilities and heads are read in the
  attention blocks' ``mixer`` (the specs' ``module``); its MoE is not served (the MoE interface
  reads ``layers[i].mlp``, and Nemotron-H's MoE block is a ``mixer``).
- ``zamba``, ``zamba2``: plain Mamba layers and hybrid layers ``h + mamba(norm(h + linear(shared(...))))``;
  every layer is `STATE_SPACE`, its mixer ``mamba`` or ``mamba_decoder.mamba`` (a tuple of paths), and
  ``linear`` a mixer input branch (the shared attention block's output enters the mixer's input);
  the shared attention is not served;
- ``falcon_h1``: every layer ("hybrid") runs a softmax attention (``self_attn``, its input scaled by
  ``attention_in_multiplier``) and a Mamba-2 mixer (``mamba``) in parallel on one normed input and
  adds ``attention_out_multiplier * attention + ssm_out_multiplier * mamba``: the layers are
  `ATTENTION` layers whose `ParallelMixer` is the `STATE_SPACE` scan; logits are
  ``lm_head(norm(h)) * lm_head_multiplier``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nnrosetta import Adapter, Residual, Variant, conventions, hookimpl
from nnrosetta.layer_kinds import ATTENTION, MLP_ONLY, STATE_SPACE, LayerKinds, ParallelMixer, from_config

if TYPE_CHECKING:
    import torch

    from nnrosetta.model import StandardizedTransformer

NNROSETTA_CONTRACT = 2

#: transformers 5's cache names of the layers, as these families use them.
CACHE_TYPES = {"linear_attention": STATE_SPACE, "full_attention": ATTENTION}

MAMBA2 = {"mamba_n_heads": 8, "mamba_d_head": 8, "mamba_expand": 2, "mamba_d_state": 4, "mamba_n_groups": 1,
          "mamba_chunk_size": 8, "mamba_d_conv": 4}
TINY = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}


def divided_by_logits_scaling(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Granite (muP): ``lm_head(norm(h)) / config.logits_scaling``."""
    return model.lm_head(model.ln_final(hidden)) / model.config.logits_scaling


def times_lm_head_multiplier(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Falcon-H1 (muP): ``lm_head(norm(h)) * config.lm_head_multiplier``."""
    return model.lm_head(model.ln_final(hidden)) * model.config.lm_head_multiplier


def _routed_experts(config) -> str | None:
    if int(getattr(config, "num_local_experts", 0) or 0) > 0:
        return (
            f"this config has {config.num_local_experts} routed experts: each layer's MLP is then "
            f"block_sparse_moe(x) + shared_mlp(x), two modules summed, which no single module or span serves "
            f"as `mlp`; configs with num_local_experts=0 are served"
        )
    return None


MAMBA_HYBRID = Adapter(
    name="mamba_hybrid",
    model_types=("bamba", "granitemoehybrid", "nemotron_h", "zamba", "zamba2", "falcon_h1"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.final_layernorm": "ln_final",
            "feed_forward": "mlp"},
    layer_kinds=LayerKinds(kinds=from_config("layers_block_type", CACHE_TYPES), mixers={STATE_SPACE: "mamba"}),
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    tiny_config={**TINY, **MAMBA2},
    variants={
        "bamba": Variant(tiny_config={"attn_layer_indices": [1, 3]}),
        "granitemoehybrid": Variant(
            rename={"model.final_layernorm": None, "model.norm": "ln_final", "feed_forward": None, "shared_mlp": "mlp"},
            residual=Residual(scale_key="residual_multiplier"),
            final_projection=divided_by_logits_scaling,
            refuse=_routed_experts,
            tiny_config={"layer_types": ["mamba", "attention", "mamba", "attention"], "num_local_experts": 0,
                         "shared_intermediate_size": 48, "residual_multiplier": 0.5, "embedding_multiplier": 3.0,
                         "logits_scaling": 2.0, "attention_multiplier": 0.3},
            notes="muP multipliers; dense configs (routed experts refused: their MLP is two modules summed)",
        ),
        "nemotron_h": Variant(
            rename={"model.embed_tokens": None, "model.embeddings": "embed_tokens", "model.final_layernorm": None,
                    "model.norm_f": "ln_final", "feed_forward": None},
            layer_kinds=LayerKinds(
                kinds=from_config("layers_block_type", {**CACHE_TYPES, "mlp": MLP_ONLY, "moe": MLP_ONLY}),
                mixers={STATE_SPACE: "mixer", ATTENTION: "mixer"},
                mlps={MLP_ONLY: "mixer", STATE_SPACE: None, ATTENTION: None},
                no_mlp="each Nemotron-H block is one mixer: Mamba-2, attention, MLP or MoE",
            ),
            # The attention is the mixer of the attention blocks: the specs name it there.
            attention=dataclasses.replace(conventions.ATTENTION, module="mixer"),
            heads=dataclasses.replace(conventions.HEADS, module="mixer", output_projection="mixer.o_proj"),
            tiny_config={"hybrid_override_pattern": "M*-E", "n_routed_experts": 4, "num_experts_per_tok": 2,
                         "moe_intermediate_size": 16, "moe_shared_expert_intermediate_size": 16, "n_groups": 1,
                         "ssm_state_size": 4, "mamba_num_heads": 8, "mamba_head_dim": 8, "expand": 2, "chunk_size": 8,
                         "n_group": 1, "topk_group": 1},
            notes="one mixer per block (Mamba-2, attention, MLP, MoE); probabilities and heads at `mixer`; no MoE",
        ),
        "zamba": Variant(
            rename={"feed_forward": None},
            layer_kinds=LayerKinds(
                kinds=from_config("layers_block_type", {"linear_attention": STATE_SPACE, "hybrid": STATE_SPACE}),
                mixers={STATE_SPACE: ("mamba", "mamba_decoder.mamba")},
                mlps={STATE_SPACE: None},
                no_mlp="a Zamba layer is h + mamba(norm(h [+ shared block])); the MLP is inside the shared block",
                mixer_input_branches={STATE_SPACE: "linear"},
            ),
            absent={"mlp": "a Zamba layer adds only its Mamba mixer to the stream; the shared block's MLP feeds "
                           "the mixer's input"},
            attention=None,
            heads=None,
            tiny_config={"attn_layer_period": 2, "attn_layer_offset": 1, "mamba_d_state": 4, "n_mamba_heads": 2,
                         "mamba_dt_rank": 4, "use_mamba_kernels": False, "attention_head_dim": 16,
                         "num_key_value_heads": 4},
            notes="every layer a Mamba scan (hybrid layers: at mamba_decoder.mamba, its input fed by the shared "
                  "attention block through `linear`); the shared attention is not served",
        ),
        "zamba2": Variant(
            rename={"feed_forward": None},
            layer_kinds=LayerKinds(
                kinds=from_config("layers_block_type", {"linear_attention": STATE_SPACE, "hybrid": STATE_SPACE}),
                mixers={STATE_SPACE: ("mamba", "mamba_decoder.mamba")},
                mlps={STATE_SPACE: None},
                no_mlp="a Zamba2 layer is h + mamba(norm(h [+ shared block])); the MLP is inside the shared block",
                mixer_input_branches={STATE_SPACE: "linear"},
            ),
            absent={"mlp": "a Zamba2 layer adds only its Mamba-2 mixer to the stream; the shared block's MLP feeds "
                           "the mixer's input"},
            attention=None,
            heads=None,
            tiny_config={"layers_block_type": ["mamba", "hybrid", "mamba", "hybrid"], "mamba_d_state": 4,
                         "n_mamba_heads": 8, "mamba_ngroups": 1, "chunk_size": 8, "num_mem_blocks": 1,
                         "use_mamba_kernels": False, "attention_head_dim": 16, "adapter_rank": 4,
                         "use_shared_attention_adapter": True, "num_key_value_heads": 4},
            notes="every layer a Mamba-2 scan (hybrid layers: at mamba_decoder.mamba, its input fed by the shared "
                  "attention block through `linear`); the shared attention is not served",
        ),
        "falcon_h1": Variant(
            layer_kinds=LayerKinds(
                kinds=from_config("layers_block_type", {"hybrid": ATTENTION}),
                mixers={ATTENTION: "self_attn"},
                parallel_mixers={ATTENTION: ParallelMixer("mamba", STATE_SPACE, scale="ssm_out_multiplier")},
            ),
            residual=Residual(attention_scale="attention_out_multiplier"),
            final_projection=times_lm_head_multiplier,
            # muP multipliers away from 1, so a declaration that drops one is caught.
            tiny_config={"mamba_d_ssm": 64, "mamba_d_head": 8, "attention_in_multiplier": 0.7,
                         "attention_out_multiplier": 0.8, "ssm_out_multiplier": 0.3, "ssm_in_multiplier": 1.3,
                         "key_multiplier": 0.9, "embedding_multiplier": 2.0, "lm_head_multiplier": 0.6,
                         "mlp_multipliers": [0.9, 1.1], "ssm_multipliers": [1.1, 0.9, 1.2, 0.8, 1.0]},
            notes="attention and a Mamba-2 mixer in parallel in every layer: attentions_* and "
                  "parallel_mixers_* (the state-space scan); muP multipliers",
        ),
    },
    description="Mamba-2 hybrids: state-space and softmax-attention layers by transformers' layers_block_type.",
)


@hookimpl
def register_adapters(register) -> None:
    register(MAMBA_HYBRID)
