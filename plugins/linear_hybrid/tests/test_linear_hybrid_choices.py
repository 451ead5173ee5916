"""Linear-attention hybrids whose every mixer is called ``self_attn``: the kind, not the name, decides.

Kimi Linear, Bailing-hybrid and MiniMax keep a delta (or lightning) attention at
``self_attn`` on their linear layers. These tests pin that such a layer is served as
linear attention (its mixer readable, attention values refused with its kind), and that
a declaration taking the name at its word fails the structure gate by name.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer, default_registry
from nnrosetta.layer_kinds import ATTENTION, LayerKinds, every_layer
from nnrosetta_conformance import run
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The capital of France is"
#: The class of each type's linear-attention mixer, kept at ``self_attn``.
LINEAR_MIXERS = {
    "kimi_linear": "KimiLinearDeltaAttention",
    "bailing_hybrid": "BailingHybridDeltaAttention",
    "minimax": "MiniMaxLightningAttention",
}


@pytest.mark.parametrize("model_type", sorted(LINEAR_MIXERS))
def test_a_linear_mixer_named_self_attn_is_served_as_linear_attention(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("linear_attention", "attention", "linear_attention", "attention")
    assert type(hf.model.layers[0].self_attn).__name__ == LINEAR_MIXERS[model_type]
    with pytest.raises(CapabilityError, match=r"'linear_attention' layer.*layers \[1, 3\] have softmax attention"):
        model.attentions_output[0]
    with pytest.raises(CapabilityError, match=r"attention_probabilities\[2\].*'linear_attention'"):
        model.attention_probabilities[2]
    seen = {}

    def record(module, args, output):
        seen["output"] = output[0] if isinstance(output, tuple) else output

    handle = hf.model.layers[0].self_attn.register_forward_hook(record)
    try:
        with torch.no_grad(), model.trace(PROMPT):
            mixed = model.mixers_output[0].save()
            attention = model.attentions_output[1].save()
    finally:
        handle.remove()
    assert torch.equal(mixed, seen["output"])
    assert attention.shape == mixed.shape


@pytest.mark.parametrize("model_type", sorted(LINEAR_MIXERS))
def test_calling_every_self_attn_softmax_attention_fails_the_structure_gate(model_type):
    served = default_registry().resolve(model_type).for_type(model_type)
    by_name = dataclasses.replace(served, name="every_self_attn_softmax", layer_kinds=LayerKinds(kinds=every_layer(ATTENTION)))
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer, adapter=by_name, check=False)
    (result,) = run(model, checks=["structure"]).results
    assert result.status == "failed"
    assert f"its mixer {LINEAR_MIXERS[model_type]}'s forward forms no softmax attention" in result.message
    assert "mixers are of several classes" in result.message


def test_without_layer_kinds_the_mixed_self_attn_classes_fail_the_structure_gate():
    served = default_registry().resolve("kimi_linear").for_type("kimi_linear")
    undeclared = dataclasses.replace(served, name="no_kinds", layer_kinds=None)
    hf, tokenizer = build_tiny("kimi_linear")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, adapter=undeclared, check=False)
    (result,) = run(model, checks=["structure"]).results
    assert result.status == "failed" and "`self_attn` is not homogeneous" in result.message


def test_olmo_hybrid_adds_post_normed_outputs_on_attention_layers_and_raw_ones_on_delta_layers():
    hf, tokenizer = build_tiny("olmo_hybrid")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPT):
        for index in (0, 1):
            saved[index] = {
                "input": model.layers_input[index].save(),
                "mixer": model.mixers_output[index].save(),
                "mlp": model.mlps_output[index].save(),
                "output": model.layers_output[index].save(),
            }
    delta, attention = saved[0], saved[1]
    assert torch.allclose(delta["input"] + delta["mixer"] + delta["mlp"], delta["output"], atol=1e-5)
    layer = hf.model.layers[1]
    normed = attention["input"] + layer.post_attention_layernorm(attention["mixer"])
    normed = normed + layer.post_feedforward_layernorm(attention["mlp"])
    assert torch.allclose(normed, attention["output"], atol=1e-5)
    raw = attention["input"] + attention["mixer"] + attention["mlp"]
    assert not torch.allclose(raw, attention["output"], atol=1e-3)


def test_latent_layers_take_their_head_size_from_the_rope_and_nope_parts(tmp_path):
    """Released Kimi-Linear and Bailing configs say head_dim 64 beside a 192-wide latent query/key head."""
    from nnrosetta.tiny import save_tiny
    from nnrosetta_conformance import runner

    for model_type in ("kimi_linear", "bailing_hybrid"):
        folder = save_tiny(model_type, tmp_path / model_type, overrides={"head_dim": 16})
        report = runner.run(str(folder), ["sizes", "kinds_shapes", "attention_probabilities"])
        assert [(r.name, r.message) for r in report.failures] == [], model_type
