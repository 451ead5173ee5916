"""Qwen3-Next / Qwen3.5: kinds from layer_types, dense layers inside an MoE model, the multimodal config's text model."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The capital of France is"


def test_kinds_follow_layer_types_and_mlp_only_layers_are_not_moe_layers():
    types = ["full_attention", "linear_attention", "linear_attention", "full_attention"]
    hf, tokenizer = build_tiny("qwen3_next", overrides={"layer_types": types, "mlp_only_layers": [2]})
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    assert model.layer_kinds == ("attention", "linear_attention", "linear_attention", "attention")
    assert model.mixers[1]._module is hf.model.layers[1].linear_attn
    assert model.attentions[3]._module is hf.model.layers[3].self_attn
    assert model.moe_layers == [0, 1, 3]
    with torch.no_grad(), model.trace(PROMPT):
        probabilities = model.attention_probabilities[0].save()
    length = len(tokenizer(PROMPT).input_ids)
    assert probabilities.shape == (1, model.num_heads, length, length)


def test_the_multimodal_config_is_served_through_its_text_decoder():
    hf, tokenizer = build_tiny("qwen3_5")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert type(hf).__name__ == "Qwen3_5ForCausalLM"
    assert model.layer_kinds == ("linear_attention", "attention", "linear_attention", "attention")
    assert model.hidden_size == hf.config.get_text_config().hidden_size == 32
