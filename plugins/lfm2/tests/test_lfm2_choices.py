"""LFM2: short convolutions as mixers, the final norm called embedding_norm, LFM3's sandwich norms."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept by the"


def test_a_convolution_mixer_reaches_a_kernel_width_back_and_no_further():
    hf, tokenizer = build_tiny("lfm2")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("convolution", "attention", "convolution", "attention")
    assert model.mixers[0]._module is hf.model.layers[0].conv
    assert model.ln_final._module is hf.model.embedding_norm
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    batch = ids.repeat(2, 1)
    with torch.no_grad(), model.trace(batch):
        edited = model.mixers_input[0].clone()
        edited[1, 2] += 10.0
        model.mixers_input[0] = edited
        mixed = model.mixers_output[0].save()
    moved = (mixed[1] - mixed[0]).abs().amax(-1) > 1e-6
    width = hf.config.conv_L_cache
    assert moved.tolist() == [position in range(2, 2 + width) for position in range(ids.shape[1])]


def test_lfm3_adds_each_sublayer_after_its_post_norm():
    hf, tokenizer = build_tiny("lfm3")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("convolution", "sliding_attention", "convolution", "attention")
    with torch.no_grad(), model.trace(PROMPT):
        layer_input = model.layers_input[1].save()
        mixed = model.mixers_output[1].save()
        mlp = model.mlps_output[1].save()
        output = model.layers_output[1].save()
    layer = hf.model.layers[1]
    expected = layer_input + layer.post_operator_norm(mixed)
    expected = expected + layer.post_ffn_norm(mlp)
    assert torch.allclose(expected, output, atol=1e-5)
    assert not torch.allclose(layer_input + mixed + mlp, output, atol=1e-3)
