"""Each claimed type is refused at load, and the error says why, naming the structure that does not fit."""

from __future__ import annotations

import pytest

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError, default_registry
from nnrosetta_refused_hybrids import REASONS

#: A word each reason must contain: the structure of the model that rules the interface out.
STRUCTURE = {
    "dory": "n_recurrent_loops",
    "hrm_text": "H_module",
    "inkling_text": "mlp_sconv",
    "inkling2_text": "block_states",
    "inkling2_loop_text": "block attention residuals",
    "gemma3n_text": "AltUp",
    "gemma3n": "AltUp",
    "blt": "local_encoder",
    "musicgen": "num_codebooks",
    "musicgen_decoder": "lm_heads",
    "musicgen_melody": "chroma",
    "musicgen_melody_decoder": "num_codebooks",
    "qwen4_exp_text": "hyper_connection_mixer",
    "qwen4_exp": "hyper_connection_mixer",
}


@pytest.mark.parametrize("model_type", sorted(REASONS))
def test_the_type_is_refused_at_load_with_its_reason(model_type, tmp_path):
    from transformers import AutoConfig

    adapter = default_registry().resolve(model_type)
    assert adapter.name == "refused_hybrids" and adapter.for_type(model_type).unsupported == REASONS[model_type]
    with pytest.raises(UnsupportedArchitectureError, match=STRUCTURE[model_type]):
        # A folder with the type's config: refused before any weight is read.
        AutoConfig.for_model(model_type).save_pretrained(tmp_path)
        StandardizedTransformer(str(tmp_path))


def _tiny_musicgen(model_class: str, config_class: str):
    import transformers

    config = getattr(transformers, config_class)(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        max_position_embeddings=64,
    )
    return getattr(transformers, model_class)(config)


def _tiny_blt():
    from transformers import BltConfig, BltForCausalLM

    stack = {"hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2, "num_hidden_layers": 1,
             "intermediate_size": 32}
    config = BltConfig(
        encoder_config={**stack, "hidden_size_global": 32},
        global_config={**stack, "hidden_size": 32},
        decoder_config={**stack, "hidden_size_global": 32},
        patcher_config=stack,
        encoder_hash_byte_group_vocab=64,
    )
    return BltForCausalLM(config)


def _tiny_inkling():
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "inkling_text", vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, swa_num_attention_heads=2, swa_num_key_value_heads=1, swa_head_dim=16,
        sliding_window_size=4, rel_extent=8, d_rel=4, intermediate_size=64, moe_intermediate_size=16,
        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, max_position_embeddings=64, pad_token_id=0,
    )
    return AutoModelForCausalLM.from_config(config).eval()


#: What a user saves: MusicgenForCausalLM writes the decoder's own model_type, not "musicgen".
SAVED = {
    "musicgen_decoder": lambda: _tiny_musicgen("MusicgenForCausalLM", "MusicgenDecoderConfig"),
    "musicgen_melody_decoder": lambda: _tiny_musicgen("MusicgenMelodyForCausalLM", "MusicgenMelodyDecoderConfig"),
    "blt": _tiny_blt,
    "inkling_text": _tiny_inkling,
}


@pytest.mark.parametrize("model_type", sorted(SAVED))
def test_a_saved_random_weight_model_is_refused_at_load_with_its_reason(model_type, tmp_path):
    import json

    SAVED[model_type]().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model_type
    with pytest.raises(UnsupportedArchitectureError, match=STRUCTURE[model_type]) as refused:
        StandardizedTransformer(str(tmp_path))
    assert REASONS[model_type] in str(refused.value)


def test_inklings_mlp_output_reaches_the_next_tokens_of_the_residual_stream():
    """What the inkling_text refusal states: an edit of the MLP's output at token 0 moves the layer's later tokens."""
    import torch

    torch.manual_seed(0)
    model = _tiny_inkling()
    layer, ids, outputs = model.model.layers[0], torch.tensor([[5, 6, 7, 8, 9]]), []

    def push_first_token(module, inputs, output):
        output = output.clone()
        output[:, 0] += 10.0
        return output

    recorder = layer.register_forward_hook(lambda module, inputs, output: outputs.append(output))
    with torch.no_grad():
        model(ids)
        editor = layer.mlp.register_forward_hook(push_first_token)
        model(ids)
    editor.remove(), recorder.remove()
    moved = [not torch.equal(outputs[0][0, t], outputs[1][0, t]) for t in range(ids.shape[1])]
    kernel = model.config.conv_kernel_size
    assert moved == [True] * kernel + [False] * (ids.shape[1] - kernel)
