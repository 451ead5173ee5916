"""Llama-family choices: every claimed type resolves here, and what each variant declares is what its layers do.

The suite checks the generic guarantees; these tests pin what is special to a type
and would fail under a realistic mistake: an embedding multiplier applied or not,
a residual scale on the branch or on the skip path, a norm called twice, a pruned
LM head or an MoE option served as if it were the dense declaration.
"""

from __future__ import annotations

import math

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer, UnsupportedArchitectureError, default_registry
from nnrosetta_conformance.tiny import build_tiny
from nnrosetta_llama import MODEL_TYPES

PROMPTS = ["The capital of France is", "Hi"]


def _decoder(hf):
    """The HuggingFace decoder: the model itself, or the image-text model's language model."""
    return getattr(hf.model, "language_model", hf.model)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_claimed_type_resolves_to_the_llama_adapter_and_maps_its_modules(model_type):
    assert default_registry().resolve(model_type).name == "llama"
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    decoder = _decoder(hf)
    assert model.layers[0].self_attn._module is decoder.layers[0].self_attn
    assert model.embed_tokens._module is decoder.embed_tokens
    if "ln_final" in model.adapter.absent:
        with pytest.raises(CapabilityError, match="twice"):
            model.ln_final
    else:
        assert model.ln_final._module is decoder.norm


def test_token_embeddings_enter_the_first_layer_unchanged():
    hf, tokenizer = build_tiny("llama")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    assert torch.equal(embeddings, first_input)


def _first_layer_input(model_type: str):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    return hf, embeddings, first_input


@pytest.mark.parametrize("model_type", ["granite", "granite_swa", "hyperclovax"])
def test_mup_types_feed_layer_0_the_embeddings_times_embedding_multiplier(model_type):
    hf, embeddings, first_input = _first_layer_input(model_type)
    assert hf.config.embedding_multiplier == 3.0
    assert torch.equal(first_input, embeddings * hf.config.embedding_multiplier)


def test_nanochat_feeds_layer_0_the_normed_embeddings_through_the_norm_it_applies_last():
    hf, embeddings, first_input = _first_layer_input("nanochat")
    with torch.no_grad():
        assert torch.equal(first_input, hf.model.norm(embeddings))
    assert not torch.allclose(first_input, embeddings)


def _sublayers(model_type: str) -> tuple:
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = [model.layers_input[layer].save(), model.attentions_output[layer].save(),
                            model.mlps_input[layer].save(), model.mlps_output[layer].save(),
                            model.layers_output[layer].save()]
    return hf, saved


def test_minicpm3_adds_sublayer_outputs_times_scale_depth_over_root_depth():
    hf, saved = _sublayers("minicpm3")
    scale = hf.config.scale_depth / math.sqrt(hf.config.num_hidden_layers)
    assert abs(scale - 1.0) > 0.5
    for layer, (layer_in, attention, mlp_in, mlp_out, layer_out) in saved.items():
        middle = layer_in + attention * scale
        with torch.no_grad():
            assert torch.equal(mlp_in, hf.model.layers[layer].post_attention_layernorm(middle))
        assert torch.equal(layer_out, middle + mlp_out * scale)


def test_doge_scales_the_skip_path_by_its_learned_residual_vectors():
    hf, saved = _sublayers("doge")
    for layer, (layer_in, attention, mlp_in, mlp_out, layer_out) in saved.items():
        block = hf.model.layers[layer]
        with torch.no_grad():
            middle = block.input_residual * layer_in + attention
            assert torch.equal(mlp_in, block.post_attention_layernorm(middle))
            assert torch.equal(layer_out, block.post_attention_residual * middle + mlp_out)
        assert not torch.allclose(layer_out, layer_in + attention + mlp_out)


def test_cohere_compass_attention_and_mlp_read_the_same_normed_input():
    hf, saved = _sublayers("cohere_compass_text")
    for layer, (layer_in, attention, mlp_in, mlp_out, layer_out) in saved.items():
        with torch.no_grad():
            assert torch.equal(mlp_in, hf.model.layers[layer].input_layernorm(layer_in))


def test_apertus1p5_with_a_pruned_lm_head_is_refused_at_load():
    hf, tokenizer = build_tiny("apertus1p5_text", overrides={"output_vocab_size": 320})
    with pytest.raises(UnsupportedArchitectureError, match="pruned to output_vocab_size=320"):
        StandardizedTransformer(hf, tokenizer=tokenizer)


def test_doge_with_its_mixture_of_experts_is_refused_at_load():
    hf, tokenizer = build_tiny("doge", overrides={"is_moe": True, "num_experts": 4, "num_experts_per_tok": 2})
    with pytest.raises(UnsupportedArchitectureError, match="is_moe=True"):
        StandardizedTransformer(hf, tokenizer=tokenizer)


def test_latent_attention_head_size_ignores_a_stale_qk_head_dim(tmp_path):
    """MiniCPM3's forward adds qk_nope_head_dim and qk_rope_head_dim; the saved qk_head_dim is a copy."""
    from nnrosetta.tiny import save_tiny
    from nnrosetta_conformance import runner

    folder = save_tiny("minicpm3", tmp_path / "m", overrides={"qk_head_dim": 99})
    report = runner.run(str(folder), ["sizes", "accessor_shapes", "attention_probabilities"])
    assert [(r.name, r.message) for r in report.failures] == []
