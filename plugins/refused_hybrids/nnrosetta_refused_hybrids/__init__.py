"""nnrosetta refusals of models whose layers do not form one residual stream through one layer list.

Each type is claimed only to be refused at load with the precise reason, so a user learns
why instead of getting accessors whose meaning would be wrong. The adapter has a low
priority: a plugin that learns to serve one of these types takes it over.
"""

from __future__ import annotations

from nnrosetta import Adapter, Variant, hookimpl

NNROSETTA_CONTRACT = 2

#: Qwen4-Exp's text model (also what AutoModelForCausalLM builds for the image-text type).
QWEN4_EXP_REASON = (
    "Qwen4-Exp keeps hc_count (at least 2, 4 by default) hyper-connection residual streams side by side, "
    "(batch, seq, hc_count * hidden): each layer's attention (or gated delta-net) and MoE read a learned "
    "per-token gated mean of the normed streams (attn_hyper_connection / mlp_hyper_connection) and their output "
    "is added to every stream times per-token weights 2 * sigmoid(block_inject_weight); PLE layers add hashed "
    "n-gram features to the streams, and model.hyper_connection_mixer collapses them (no final norm) before "
    "lm_head. No hidden_size-wide tensor is the residual stream, so layers_output[i], steering, skip_layers and "
    "project_on_vocab have no single meaning"
)

REASONS = {
    "dory": (
        "Dory is a looped (recurrent-depth) transformer: its n_recurrent_layers middle layers run "
        "n_recurrent_loops times per forward (2 by default), so layers_output[i] of a looped layer names one "
        "of several calls; and each layer interpolates, h + rate * (sublayer - h), instead of adding"
    ),
    "hrm_text": (
        "the Hierarchical Reasoning Model has no single layer list: a low-level stack (L_module) and a "
        "high-level stack (H_module) run in nested cycles (H_cycles x L_cycles), each stack's input the "
        "sum of both states, so a layer index names several calls on two interleaved streams"
    ),
    "inkling2_text": (
        "Inkling2 layers read block attention residuals: each sublayer's input is an attention over the "
        "stack of earlier blocks' states (attention_input/mlp_input over block_states) and the residual "
        "restarts at block boundaries, so layers_input[i+1] is not layers_output[i] and no single residual "
        "stream runs through the layers"
    ),
    "inkling2_loop_text": (
        "Inkling2-Loop layers read block attention residuals over earlier blocks' states and a message "
        "attention residual, and loop over their layers: no single residual stream runs through one layer list"
    ),
    "gemma3n_text": (
        "Gemma 3n keeps altup_num_inputs (4) AltUp streams: each layer's output is a "
        "(altup_num_inputs, batch, seq, hidden) stack (stream 0 the corrected prediction, the others its "
        "projections), and the final hidden state is the magnitude-matched mean of the un-projected streams; "
        "no (batch, seq, hidden) tensor is the residual stream, so layers_output[i] and project_on_vocab have "
        "no single meaning"
    ),
    "qwen4_exp_text": QWEN4_EXP_REASON,
    "qwen4_exp": QWEN4_EXP_REASON,
}

REFUSED = Adapter(
    name="refused_hybrids",
    model_types=tuple(REASONS),
    priority=-10,
    variants={model_type: Variant(unsupported=reason) for model_type, reason in REASONS.items()},
    description="Looped, multi-stream and block-residual models, refused with the reason.",
)


@hookimpl
def register_adapters(register) -> None:
    register(REFUSED)
