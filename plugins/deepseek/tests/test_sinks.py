"""Attention sinks on MiMo-V2-Flash's sliding layers only (`AttentionSpec.sinks`, None on full layers)."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.attention import sink_logits
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept"


def test_mimo_v2_flash_sinks_only_on_its_sliding_layers():
    hf, tokenizer = build_tiny("mimo_v2_flash", attn_implementation="eager")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    kinds = hf.config.layer_types
    assert "sliding_attention" in kinds and "full_attention" in kinds
    sums = {}
    with torch.no_grad(), model.trace(PROMPT):
        for layer in range(model.num_layers):
            sums[layer] = model.attention_probabilities[layer].sum(-1).save()
    for layer, kind in enumerate(kinds):
        sinks = sink_logits(model, layer)
        if kind == "sliding_attention":
            assert sinks is hf.model.layers[layer].self_attn.sinks
            assert bool((sums[layer] < 1 - 1e-3).all())
        else:
            assert sinks is None
            assert torch.allclose(sums[layer], torch.ones_like(sums[layer]), atol=1e-6, rtol=0)
    CHECKS["attention_probabilities"].function(model)
