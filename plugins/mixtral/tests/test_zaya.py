"""ZAYA1: served with its learned affine residual and CCA heads; MoE routing refused with its reason.

The tiny model's residual scales and biases are random (tiny perturbs constant
parameters), so a dropped or misplaced bias changes the sum.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog", "Paris"]


def _batch(tokenizer) -> dict:
    """The left-padded batch with the positions a served trace passes (counted over real tokens)."""
    batch = dict(tokenizer(PROMPTS, return_tensors="pt", padding=True))
    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    return batch


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("zaya")
    return hf, tokenizer, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_zaya_logits_are_bit_identical_to_plain_huggingface(loaded):
    hf, tokenizer, model = loaded
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = hf(**batch).logits
        with model.trace(PROMPTS):
            served = model.logits.save()
    assert torch.equal(served, expected)


def test_zaya_layer_output_is_the_affine_sum_of_branch_and_skip(loaded):
    _, _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for index in range(model.num_layers):
            saved[index] = (model.layers_input[index].save(), model.attentions_output[index].save(),
                            model.mlps_output[index].save(), model.layers_output[index].save())
    for index, (stream, attention, mlp, output) in saved.items():
        layer = model.layers[index]._module
        after_attention = layer.post_attention_residual_scale
        after_mlp = layer.post_mlp_residual_scale
        with torch.no_grad():
            stream = ((attention + after_attention.hidden_states_bias) * after_attention.hidden_states_scale
                      + (stream + after_attention.residual_bias) * after_attention.residual_scale)
            stream = ((mlp + after_mlp.hidden_states_bias) * after_mlp.hidden_states_scale
                      + (stream + after_mlp.residual_bias) * after_mlp.residual_scale)
        assert float(after_mlp.residual_bias.detach().abs().max()) > 0  # the biases the declaration states are not zero
        assert torch.equal(stream, output)


def test_zaya_layer_zero_reads_the_affine_embedding(loaded):
    hf, _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["embedded"] = model.embed_tokens.output.save()
        saved["input"] = model.layers_input[0].save()
    scaled = hf.model
    with torch.no_grad():
        expected = ((saved["embedded"] + scaled.input_hidden_states_bias) * scaled.input_hidden_states_scale).float()
    assert float(scaled.input_hidden_states_bias.detach().abs().max()) > 0
    assert torch.equal(saved["input"], expected)


def test_zaya_attention_probabilities_are_huggingface_eager_attentions():
    hf, tokenizer = build_tiny("zaya")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = hf(**batch, output_attentions=True).attentions
        served = []
        with model.trace(PROMPTS):
            for index in range(model.num_layers):
                served.append(model.attention_probabilities[index].save())
    assert all(torch.equal(s, e) for s, e in zip(served, expected))


def test_zaya_refuses_routing_with_the_reason(loaded):
    _, _, model = loaded
    assert "skip expert" in model.adapter.notes
    with pytest.raises(CapabilityError):
        with model.trace(PROMPTS):
            model.routers_output[0].save()


def test_zaya_queries_and_keys_are_the_cca_normed_ones_before_rotary(loaded):
    _, _, model = loaded
    with torch.no_grad(), model.trace(PROMPTS):
        queries = model.queries[0].save()
        keys = model.keys[0].save()
    temp = model.layers[0]._module.self_attn.qk_norm.temp.detach()
    root = model.head_dim ** 0.5
    assert queries.shape[1] == model.num_heads and keys.shape[1] == model.num_kv_heads
    assert torch.allclose(queries.norm(dim=-1), torch.full_like(queries[..., 0], root))
    assert torch.allclose(keys.norm(dim=-1), (root * temp.abs())[None, :, None].expand_as(keys[..., 0]))
