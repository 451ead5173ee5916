"""What each Llama-tree model type changes in the family's declaration.

A type absent from `VARIANTS` is Llama as declared (its tiny config is `TINY`).
Each variant keeps the type's distinctive features in its tiny config (sliding
windows per layer, per-layer NoPE, q/k norms, partial rotary, multipliers far
from 1) so a declaration that ignores one of them fails the conformance suite.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from nnrosetta import AttentionSpec, Called, Inside, LayerTensor, Residual, Variant, conventions

from . import projections

#: Model types whose HuggingFace module tree matches Llama's (each proven by the conformance suite).
MODEL_TYPES = (
    "llama",
    "mistral",
    "ministral",
    "qwen2",
    "qwen3",
    "olmo",
    "olmo2",
    "olmo3",
    "phi3",
    "stablelm",
    "smollm3",
    "helium",
    "starcoder2",
    "glm",
    "seed_oss",
    "arcee",
    "apertus",
    "ernie4_5",
    "nemotron",
    # Llama's own modeling code under another config type.
    "exaone",
    "internlm3",
    "iquestcoder",
    # Llama's tree, with their own layers.
    "cwm",
    "jais2",
    "apertus1p5_text",
    "exaone4",
    "glm4",
    "emu3",
    # muP multipliers on the embeddings, the residual branches and the logits.
    "granite",
    "granite_swa",
    "hyperclovax",
    # Parallel attention and MLP from one norm, scaled logits.
    "cohere_compass_text",
    # Attention that departs from Llama's inside the module.
    "bitnet",
    "diffllama",
    "hunyuan_v1_dense",
    "nanochat",
    "ministral3",
    "doge",
    # Multi-head latent attention (DeepSeek-V2's MLA) in Llama's tree.
    "minicpm3",
    "youtu",
    # Image-text models whose language model is a Llama-tree decoder at model.language_model.
    "got_ocr2",
    "moss_transcribe_diarize",
    # Phi-3's decoder (fused qkv_proj / gate_up_proj) with image and audio embedders beside embed_tokens.
    "phi4_multimodal",
    # Moshi's text decoder (MoshiForCausalLM, the temporal transformer used for text alone).
    "moshi",
)

#: Claimed only to be refused at load with the reason in their variant (no tiny model is built for them).
REFUSED_TYPES = ("mllama",)

RENAME = {
    "model.embed_tokens": "embed_tokens",
    "model.layers": "layers",
    "model.norm": "ln_final",
}

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
}

#: A 4-token window on layer 1 only: on the probe's longer prompts the two layers differ.
SLIDING_SECOND = {"sliding_window": 4, "layer_types": ["full_attention", "sliding_attention"]}
#: The same, with the sliding layer first (the pattern of types whose global layers come later).
SLIDING_FIRST = {"sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"]}

#: Llama 3 frequency scaling, its original context shrunk below the tiny models' 128 positions.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500_000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


def pruned_head(config) -> Optional[str]:
    """Apertus 1.5 may prune its LM head to a text-only prefix of the vocabulary (output_vocab_size)."""
    width = getattr(config, "output_vocab_size", None)
    if width is None or width == config.vocab_size:
        return None
    return (
        f"its LM head is pruned to output_vocab_size={width} of the vocab_size={config.vocab_size} embedded ids, "
        f"so the logits are narrower than the input vocabulary; nnrosetta's vocab_size is one number, both the "
        f"ids a trace accepts and the logits' width. Load a checkpoint with the unpruned head"
    )


def minicpm3_branch_scale(config) -> float:
    """MiniCPM3 adds each sublayer's output times scale_depth / sqrt(num_hidden_layers)."""
    return config.scale_depth / math.sqrt(config.num_hidden_layers)


#: muP factors set far from 1 (and attention's away from 1/sqrt(head_dim)), so dropping one fails.
MULTIPLIERS = {"embedding_multiplier": 3.0, "residual_multiplier": 0.3, "logits_scaling": 4.0,
               "attention_multiplier": 0.5}
#: Granite multiplies each sublayer's output by config.residual_multiplier before the residual add.
SCALED = Residual(scale_key="residual_multiplier")
#: Granite SWA's own eager attention imports dropout as `F` (`F.dropout`), not as `nn.functional`.
SINK_SCALED_ATTENTION = AttentionSpec(probabilities=Inside(conventions.ATTENTION_CALL, Called("F.dropout")))
GRANITE_NOTES = (
    "muP: token_embeddings is embed_tokens' output, layer 0 reads it times embedding_multiplier; "
    "sublayer outputs are added times residual_multiplier; logits are divided by logits_scaling"
)

#: Why the `heads` check's rotary test cannot pass where a transform follows rotary embedding.
#: Llama's heads where the family transforms the rotated queries and keys before the attention call:
#: queries[i]/keys[i] are what rotary receives, rotated_queries[i]/rotated_keys[i] what attention receives.
ROTATED_THEN_TRANSFORMED = dataclasses.replace(conventions.HEADS, rotary_output=conventions.ROTARY_CALL)


def _moe_doge(config) -> Optional[str]:
    if getattr(config, "is_moe", False):
        return (
            "is_moe=True replaces each layer's MLP with a cross-domain mixture of experts (DogeCDMoE) that this "
            "dense declaration does not route; load a dense Doge checkpoint (is_moe=False)"
        )
    return None


#: MLA shrunk: queries and keys of nope + rope = 12 dims per head, values of 8, latents of 8 and 16.
#: Keys and values are expanded to every head from the latent, so there are as many kv heads as heads;
#: the config's head_dim is the rotary part's size (what the rotary embedding is built for).
TINY_MLA = {"num_key_value_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 8,
            "qk_rope_head_dim": 4, "head_dim": 4, "v_head_dim": 8}
MLA_NOTES = (
    "multi-head latent attention: heads are not served (queries are split into a rotary and a non-rotary "
    "part, keys are expanded per head from one shared latent and one shared rotary key after rotary, and "
    "values have their own head size v_head_dim); head_dim is the query/key head size qk_head_dim "
    "(nope + rope), which attention probabilities are computed over"
)
MLA = {"heads": None, "config_keys": {"head_dim": conventions.latent_qk_head_dim}}


PARTIAL_ROTARY = Variant(tiny_config={"partial_rotary_factor": 0.5})

#: OLMo 2/3 and EXAONE 4 normalise each sublayer's output (and not its input) before the residual add.
POST_NORMED = Residual(
    kind="sandwich", attention_post_norm="post_attention_layernorm", mlp_post_norm="post_feedforward_layernorm"
)

VARIANTS = {
    "stablelm": PARTIAL_ROTARY,
    "glm": PARTIAL_ROTARY,
    "nemotron": PARTIAL_ROTARY,
    "olmo2": Variant(residual=POST_NORMED, notes="sublayer outputs pass post_*_layernorm before the residual add"),
    "olmo3": Variant(
        residual=POST_NORMED,
        tiny_config=SLIDING_SECOND,
        notes="sublayer outputs pass post_*_layernorm before the residual add; sliding-window layers",
    ),
    "cwm": Variant(
        tiny_config={**SLIDING_SECOND, "rope_parameters": {**LLAMA3_ROPE, "rope_theta": 1_000_000.0}},
        notes="sliding-window and global layers",
    ),
    "apertus1p5_text": Variant(
        tiny_config={"rope_parameters": {**LLAMA3_ROPE, "rope_theta": 12_000_000.0}},
        refuse=pruned_head,
        notes="q/k norms, xIELU MLP; a pruned LM head (output_vocab_size below vocab_size) is refused",
    ),
    "exaone4": Variant(
        residual=POST_NORMED,
        tiny_config=SLIDING_FIRST,
        notes="q/k norms; sliding layers rotary, global layers NoPE; post-normed sublayers",
    ),
    "glm4": Variant(
        residual=Residual(kind="sandwich", attention_post_norm="post_self_attn_layernorm",
                          mlp_post_norm="post_mlp_layernorm"),
        tiny_config={"partial_rotary_factor": 0.5},
        notes="sandwich norms (post_self_attn_layernorm, post_mlp_layernorm); partial rotary",
    ),
    "granite": Variant(
        final_projection=projections.divided_by_logits_scaling,
        residual=SCALED,
        tiny_config=MULTIPLIERS,
        notes=GRANITE_NOTES,
    ),
    "granite_swa": Variant(
        final_projection=projections.divided_by_logits_scaling,
        attention=SINK_SCALED_ATTENTION,
        residual=SCALED,
        # Layer 0 global and NoPE (rope theta 0), layer 1 sliding and rotary.
        tiny_config={**MULTIPLIERS, **SLIDING_SECOND, "layer_rope_theta": [0.0, 10_000.0]},
        notes=GRANITE_NOTES + "; per-layer sliding windows and NoPE; attention_probabilities[i] is the softmax "
        "over real keys, each query's output is then scaled by its learned sink (sigmoid(lse - sink))",
    ),
    "hyperclovax": Variant(
        final_projection=projections.times_logits_scaling,
        residual=Residual(kind="sandwich", attention_post_norm="post_norm1", mlp_post_norm="post_norm2",
                          scale_key="residual_multiplier"),
        tiny_config={**MULTIPLIERS, "use_post_norm": True},
        notes="muP as Granite but logits are multiplied by logits_scaling; sublayer outputs pass post_norm1/2 "
        "(peri-layer norm) before being added times residual_multiplier",
    ),
    "cohere_compass_text": Variant(
        final_projection=projections.times_logit_scale,
        residual=Residual(kind="parallel"),
        tiny_config={
            **SLIDING_FIRST,
            # Sliding layers rotary, global layers NoPE (no rope parameters for their type).
            "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                                "full_attention": None},
            "logit_scale": 0.25,
        },
        notes="attention and MLP read one input_layernorm and are added together (mlps_input[i] is "
        "attentions_input[i]); logits times logit_scale; text path of the vision-language model",
    ),
    "bitnet": Variant(
        notes="heads_output[i] is o_proj's input: the head outputs after attn_sub_norm (one RMSNorm over all "
        "heads of a position); the MLP applies ffn_sub_norm inside",
    ),
    "diffllama": Variant(
        heads=None,
        notes="differential attention: two attention calls share queries and keys (one softmax map per head; "
        "pair j combines heads j and j+H/2) over the two halves of the values; attention_probabilities[i] is "
        "that map as the first call uses it (what HuggingFace returns), and a write replaces it in the first "
        "call only. Heads are not served: the o_proj input holds H/2 differential heads of 2*head_dim after a "
        "group norm, not H heads of head_dim, and values[i] are not what either call receives",
    ),
    "hunyuan_v1_dense": Variant(
        heads=ROTATED_THEN_TRANSFORMED,
        notes="per-head query/key norms (query_layernorm/key_layernorm) are applied after rotary: "
        "queries[i]/keys[i] are the projections before rotary, rotated_queries[i]/rotated_keys[i] rotated and "
        "normed, as the attention call receives them (heads.rotary_output)",
    ),
    "nanochat": Variant(
        final_projection=projections.softcapped_through_decoder_norm,
        rename={"model.norm": None},
        absent={"ln_final": "NanoChat applies its one parameter-free model.norm twice, to the embeddings before "
                "layer 0 and after the last layer, so a standard ln_final's input and output in a trace would be "
                "the first call's; project_on_vocab applies model.norm ad hoc"},
        heads=ROTATED_THEN_TRANSFORMED,
        tiny_config={"final_logit_softcapping": 2.0},
        notes="layer 0 reads norm(token_embeddings); logits soft-capped; parameter-free q/k norms after rotary "
        "(rotated_queries[i]/rotated_keys[i] are rotated and normed, heads.rotary_output); relu^2 MLP",
    ),
    "ministral3": Variant(
        # Positions past original_max_position_embeddings (4 here) scale the rotated queries (Llama 4's
        # attention temperature), so the probe's longer prompts reach it.
        tiny_config={"rope_parameters": {"rope_type": "yarn", "rope_theta": 1_000_000.0, "factor": 32.0,
                                         "original_max_position_embeddings": 4, "beta_fast": 32.0,
                                         "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
                                         "llama_4_scaling_beta": 0.5}},
        heads=ROTATED_THEN_TRANSFORMED,
        notes="YaRN rotary; rotated_queries[i] include Llama 4's position-dependent query scale, 1 + beta * "
        "log(1 + floor(position / original_max_position_embeddings)), applied after rotary (heads.rotary_output)",
    ),
    "doge": Variant(
        # The skip path is scaled, not the sublayer: h = input_residual * h + attn, then
        # h = post_attention_residual * h + mlp (learned per-channel vectors).
        residual=Residual(attention_skip=LayerTensor("input_residual"),
                          mlp_skip=LayerTensor("post_attention_residual")),
        tiny_config={"keep_window_size": 4},
        refuse=_moe_doge,
        notes="q/k norms; dynamic mask (value-dependent bias, top keep_window_size keys) inside the attention "
        "mask; learned per-channel skip scales input_residual / post_attention_residual; MoE (is_moe) refused",
    ),
    "minicpm3": Variant(
        **MLA,
        final_projection=projections.hidden_divided_by_width_ratio,
        residual=Residual(scale_key=minicpm3_branch_scale),
        # scale_depth 0.5 over 2 layers: branches scaled by 0.35; embeddings by 3; the head reads norm(h) / 4.
        tiny_config={**TINY_MLA, "scale_emb": 3.0, "scale_depth": 0.5, "dim_model_base": 8},
        notes=MLA_NOTES + "; token_embeddings are scaled by scale_emb inside the embedding; sublayer outputs "
        "are added times scale_depth / sqrt(num_hidden_layers); the head reads norm(h) * dim_model_base / "
        "hidden_size",
    ),
    "youtu": Variant(**MLA, tiny_config=TINY_MLA, notes=MLA_NOTES + "; interleaved rotary"),
    "got_ocr2": Variant(
        rename={
            "model.embed_tokens": None,
            "model.layers": None,
            "model.norm": None,
            "model.language_model.embed_tokens": "embed_tokens",
            "model.language_model.layers": "layers",
            "model.language_model.norm": "ln_final",
        },
        tiny_config={
            # The language model is a Qwen2 decoder; its vocabulary is the tiny tokenizer's (384).
            "text_config": {**TINY, "model_type": "qwen2", "vocab_size": 384, "pad_token_id": 3,
                            "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False},
            "vision_config": {"hidden_size": 16, "output_channels": 8, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "image_size": 64, "patch_size": 16, "window_size": 2,
                              "global_attn_indexes": [1], "mlp_dim": 32},
            "image_token_index": 383,
        },
        notes="OCR image-text model, text path: the Qwen2 decoder at model.language_model; image features "
        "enter through HuggingFace unchanged; the top-level config says eager (the vision encoder has no "
        "other) while the decoder may run sdpa: attention probabilities need the decoder (its text config) "
        "eager, which enable_attention_probs=True and the suite's switch see to",
    ),
    "phi4_multimodal": Variant(
        tiny_config={
            "partial_rotary_factor": 0.5,
            # The image and audio encoders shrunk (one block each) only so the model is cheap to build.
            "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "image_size": 28, "patch_size": 14, "crop_size": 28},
            "audio_config": {"hidden_size": 16, "intermediate_size": 32, "num_blocks": 1, "num_attention_heads": 2,
                             "ext_pw_out_channel": 16, "depthwise_separable_out_channel": 16,
                             "nemo_conv_channels": 16},
        },
        notes="text path: Phi-3's decoder in Llama's tree; model.embed_tokens_extend replaces image/audio token "
        "embeddings only when pixel or audio features are given, so token_embeddings is embed_tokens' output "
        "and, on text, layer 0's input",
    ),
    "moss_transcribe_diarize": Variant(
        rename={
            "model.embed_tokens": None,
            "model.layers": None,
            "model.norm": None,
            "model.language_model.embed_tokens": "embed_tokens",
            "model.language_model.layers": "layers",
            "model.language_model.norm": "ln_final",
        },
        tiny_config={
            # The language model is a Qwen3 decoder; its vocabulary is the tiny tokenizer's (384).
            "text_config": {**TINY, "model_type": "qwen3", "vocab_size": 384, "pad_token_id": 3,
                            "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False},
            # The Whisper-style audio encoder shrunk only so the model is cheap to build.
            "audio_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "num_mel_bins": 8, "max_source_positions": 16},
            "audio_token_id": 383,
        },
        notes="speech-to-text model, text path: the Qwen3 decoder at model.language_model (q/k norms); audio "
        "features replace the audio placeholder tokens' embeddings through HuggingFace unchanged",
    ),
    "moshi": Variant(
        # A gated MLP (fc1 to ffn_dim, halves gated, fc2 back); the Mimi audio codec and depth decoder
        # configs are only parsed: MoshiForCausalLM builds the text decoder alone.
        tiny_config={"ffn_dim": 128},
        notes="text path: MoshiForCausalLM, Llama's tree (q/k/v/o_proj wrap their Linear in MoshiLinear, the "
        "MLP is fc1/fc2 with the gate in fc1's first half); embed_tokens has vocab_size + 1 rows (the extra id "
        "is the audio model's initial text token)",
    ),
    "emu3": Variant(
        tiny_config={
            # AutoModelForCausalLM builds Emu3's text model from its text config; the image tokenizer
            # (VQ-VAE) config is shrunk only so the composite config is cheap to build.
            "text_config": {**TINY, "vocab_size": 384, "pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2},
            "vq_config": {"embed_dim": 8, "channels": 8, "base_channels": 8, "channel_multiplier": [1, 1],
                          "num_res_blocks": 1, "attn_resolutions": [], "codebook_size": 16, "latent_channels": 8},
        },
        notes="text model (Emu3ForCausalLM); image generation and understanding go through HuggingFace unchanged",
    ),
    "mllama": Variant(
        unsupported=(
            "every layer listed in text_config.cross_attention_layers is a MllamaCrossAttentionDecoderLayer with "
            "`cross_attn` (keys and values from the image states, tanh-gated by cross_attn_attn_gate / "
            "cross_attn_mlp_gate) and no `self_attn`, and MllamaTextModel skips those layers entirely when no image "
            "is given; a layer list where some layers have no self-attention and are identity on text cannot carry "
            "the standard layers/self_attn meaning"
        ),
    ),
}
