"""nnrosetta plugin for Mamba state-space models: no softmax attention anywhere.

Every layer is ``hidden + mixer(norm(hidden))``: one selective-scan mixer and no MLP,
so each layer is declared a `STATE_SPACE` layer whose mixer is ``mixer``; the
attention accessors, probabilities and heads are refused with the layer's kind, and
``mixers_input/output[i]`` serve the scan's input and output. The backbone keeps its
own names (``backbone.embeddings``, ``backbone.norm_f``). Without the ``mamba_ssm``
and ``causal_conv1d`` kernels transformers runs its slow reference scan (CPU-safe).

- ``mamba``, ``falcon_mamba``: Mamba-1 mixers (falcon_mamba adds RMS norms on B, C, dt);
- ``mamba2``: Mamba-2 mixers (multi-head SSD with a gated RMS norm).
"""

from __future__ import annotations

from nnrosetta import Adapter, Variant, hookimpl
from nnrosetta.layer_kinds import STATE_SPACE, LayerKinds, every_layer

NNROSETTA_CONTRACT = 2

#: Each layer a state-space scan at ``mixer``, without an MLP.
STATE_SPACE_LAYERS = LayerKinds(
    kinds=every_layer(STATE_SPACE),
    mixers={STATE_SPACE: "mixer"},
    mlps={STATE_SPACE: None},
    no_mlp="a Mamba block is a norm and a state-space mixer, no MLP",
)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "state_size": 4, "expand": 2, "conv_kernel": 4}

MAMBA = Adapter(
    name="mamba",
    model_types=("mamba", "falcon_mamba", "mamba2"),
    rename={"backbone.embeddings": "embed_tokens", "backbone.layers": "layers", "backbone.norm_f": "ln_final"},
    layer_kinds=STATE_SPACE_LAYERS,
    tiny_config={**TINY, "time_step_rank": 4},
    variants={
        "mamba2": Variant(
            tiny_config={"num_heads": 8, "head_dim": 8, "n_groups": 1, "chunk_size": 8, "time_step_rank": "auto"},
            notes="Mamba-2 (SSD) mixers",
        ),
        "falcon_mamba": Variant(notes="Mamba-1 mixers with RMS-normed B, C and dt"),
    },
    description="Mamba state-space models: every layer a selective scan at `mixer`, no attention, no MLP.",
)


@hookimpl
def register_adapters(register) -> None:
    register(MAMBA)
