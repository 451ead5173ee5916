"""Recurrent models: Griffin's block pattern repeats over the layers, its local attention is read at temporal_block."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny


def test_griffin_block_types_repeat_over_the_layers():
    hf, tokenizer = build_tiny("recurrent_gemma", overrides={"num_hidden_layers": 5})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("recurrent", "recurrent", "sliding_attention", "recurrent", "recurrent")
    assert [type(layer.temporal_block).__name__ for layer in hf.model.layers] == [
        "RecurrentGemmaRecurrentBlock", "RecurrentGemmaRecurrentBlock", "RecurrentGemmaAttention",
        "RecurrentGemmaRecurrentBlock", "RecurrentGemmaRecurrentBlock",
    ]
    assert model.attentions[2]._module is hf.model.layers[2].temporal_block
    with pytest.raises(CapabilityError, match=r"'recurrent' layer.*layers \[2\] have softmax attention"):
        model.attentions_output[3]
    with pytest.raises(CapabilityError, match=r"attention_probabilities\[0\].*'recurrent'"):
        model.attention_probabilities[0]


def test_probabilities_of_the_local_attention_keep_to_its_window():
    hf, tokenizer = build_tiny("recurrent_gemma", overrides={"attention_window_size": 3})
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    with torch.no_grad(), model.trace("The cat sat on the mat and the dog slept by the"):
        probabilities = model.attention_probabilities[2].save()
    seq = probabilities.shape[-1]
    distance = torch.arange(seq)[:, None] - torch.arange(seq)[None, :]
    outside = (distance < 0) | (distance >= 3)
    assert bool((probabilities[..., outside] == 0).all())
    assert torch.allclose(probabilities.sum(-1), torch.ones(()), atol=1e-5)


def test_logits_are_the_soft_capped_projection_of_the_last_layer():
    model = StandardizedTransformer("tiny:recurrent_gemma")
    with torch.no_grad(), model.trace("The capital of France is"):
        last = model.layers_output[-1].save()
        logits = model.logits.save()
    cap = model.config.logits_soft_cap
    assert float(logits.abs().max()) < cap
    with torch.no_grad():
        uncapped = model.lm_head(model.ln_final(last))
    assert float(uncapped.abs().max()) > float(logits.abs().max())
    assert torch.allclose(model.project_on_vocab(last), logits, atol=1e-5)
