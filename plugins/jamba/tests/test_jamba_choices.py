"""Jamba: two layer classes by kind, and MoE feed-forwards only every expert_layer_period layers."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny


def test_kinds_follow_the_attention_period_and_experts_follow_the_expert_period():
    hf, tokenizer = build_tiny("jamba")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("state_space", "attention", "state_space", "attention")
    assert [type(layer).__name__ for layer in hf.model.layers] == ["JambaMambaDecoderLayer", "JambaAttentionDecoderLayer"] * 2
    assert model.mixers[0]._module is hf.model.layers[0].mamba
    assert model.moe_layers == [1, 3]
    with pytest.raises(CapabilityError):
        model.routers_output[0]
    with torch.no_grad(), model.trace("The capital of France is"):
        logits = model.routers_output[1].save()
    assert logits.shape[-1] == model.num_experts == 4
