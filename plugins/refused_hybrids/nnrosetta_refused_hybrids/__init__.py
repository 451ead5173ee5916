"""nnrosetta refusals of models with no single residual stream through one layer list, or no single token stream.

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

GEMMA3N_TEXT_REASON = (
    "Gemma 3n keeps altup_num_inputs (4) AltUp streams: each layer's output is a "
    "(altup_num_inputs, batch, seq, hidden) stack (stream 0 the corrected prediction, the others its "
    "projections), and the final hidden state is the magnitude-matched mean of the un-projected streams; "
    "no (batch, seq, hidden) tensor is the residual stream, so layers_output[i] and project_on_vocab have "
    "no single meaning"
)

#: MusicGen's decoder, shared by the composite type and the decoder alone (what MusicgenForCausalLM saves).
MUSICGEN_CODEBOOKS = (
    "reads num_codebooks (4 by default) parallel streams of audio codes: input_ids is (batch * num_codebooks, seq), "
    "the decoder's input is the sum of one embedding per codebook (the decoder's embed_tokens is a ModuleList), and "
    "one lm_head per codebook (lm_heads) gives logits of shape (batch * num_codebooks, seq, vocab); there is no "
    "single embed_tokens or lm_head, and the rows of input_ids and logits are codebooks, not prompts, so "
    "token_embeddings, logits, next_token_probs and project_on_vocab have no single meaning"
)
MUSICGEN_REASON = (
    "MusicGen's decoder " + MUSICGEN_CODEBOOKS + "; the composite musicgen model adds a T5 text encoder, "
    "cross-attended by every decoder layer's encoder_attn, and an EnCodec audio codec"
)
MUSICGEN_MELODY_REASON = (
    "MusicGen-Melody's decoder " + MUSICGEN_CODEBOOKS + "; its conditioning (the text encoder's states and the "
    "audio's chroma features) is concatenated before the code embeddings along the sequence axis, so the "
    "first positions of every layer are conditioning, not tokens"
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
    "inkling_text": (
        "Inkling (unlike Inkling2) keeps one residual stream, but each layer passes both sublayers' outputs "
        "through a causal short convolution before adding them: h + attn_sconv(self_attn(input_layernorm(h))), "
        "then h + mlp_sconv(mlp(post_attention_layernorm(h))), each sconv being x + a depthwise causal conv1d "
        "over conv_kernel_size (4) tokens. What the MLP adds to the stream at a token mixes the MLP outputs of "
        "the conv_kernel_size - 1 tokens before it, so mlps_output[i] cannot be both the MLP's per-token output "
        "and what the layer adds (nor attentions_output[i] the attention's), and no residual declaration names "
        "a token-mixing map between a sublayer and its add"
    ),
    "inkling2_loop_text": (
        "Inkling2-Loop layers read block attention residuals over earlier blocks' states and a message "
        "attention residual, and loop over their layers: no single residual stream runs through one layer list"
    ),
    "gemma3n_text": GEMMA3N_TEXT_REASON,
    "gemma3n": (
        "the image-audio-text Gemma 3n's text path, model.language_model, is the gemma3n_text decoder: "
        + GEMMA3N_TEXT_REASON
    ),
    "blt": (
        "BLT (Byte Latent Transformer) runs three layer stacks over two sequence axes: model.local_encoder's "
        "layers run over bytes (embedded with hashed byte n-gram embeddings, encoder_hash_tok_embedding), their "
        "states are pooled into patches (patch_reduce) and cross-attended into patch states; "
        "model.global_transformer's layers run over patches, one position per patch; model.local_decoder's "
        "layers run over bytes again, cross-attending to the global patch states, before its norm and lm_head. "
        "No single layer list or residual stream runs over the token positions, so layers_output[i], the "
        "residual chain and project_on_vocab have no single meaning"
    ),
    "musicgen": MUSICGEN_REASON,
    "musicgen_decoder": MUSICGEN_REASON,
    "musicgen_melody": MUSICGEN_MELODY_REASON,
    "musicgen_melody_decoder": MUSICGEN_MELODY_REASON,
    "qwen4_exp_text": QWEN4_EXP_REASON,
    "qwen4_exp": QWEN4_EXP_REASON,
}

REFUSED = Adapter(
    name="refused_hybrids",
    model_types=tuple(REASONS),
    priority=-10,
    variants={model_type: Variant(unsupported=reason) for model_type, reason in REASONS.items()},
    description="Looped, multi-stream, multi-stack, block-residual and multi-codebook models, refused with the reason.",
)


@hookimpl
def register_adapters(register) -> None:
    register(REFUSED)
