"""Recurrent models: Griffin's block pattern repeats over the layers, its local attention is not reached as self_attn."""

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
