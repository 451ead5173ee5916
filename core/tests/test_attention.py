"""Attention probabilities and per-head access: loading, reading, writing, and every bad input.

Families are tiny random-weight models built offline; the references are
HuggingFace's own outputs (``output_attentions=True`` under eager attention).
"""

from __future__ import annotations

import dataclasses
import io

import nnsight
import pytest
import torch

from nnrosetta import (
    AccessorAssignmentError,
    Adapter,
    AttentionImplementationError,
    AttentionSpec,
    Called,
    Inside,
    Capability,
    CapabilityError,
    HeadsSpec,
    InvalidAdapterError,
    LayerIndexError,
    ShapeError,
    SourceLabelError,
    StandardizedTransformer,
    default_registry,
)
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny, save_tiny

PROMPTS = ["The capital of France is", "Hi", "The cat sat on the mat and"]


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    return save_tiny("llama", tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def eager(llama_folder) -> StandardizedTransformer:
    """A llama loaded by path with enable_attention_probs=True."""
    return StandardizedTransformer(str(llama_folder), enable_attention_probs=True)


@pytest.fixture(scope="module")
def sdpa(llama_folder) -> StandardizedTransformer:
    """The same weights loaded without the flag (sdpa attention)."""
    return StandardizedTransformer(str(llama_folder), attn_implementation="sdpa")


def _batch(model: StandardizedTransformer) -> dict[str, torch.Tensor]:
    return dict(model.tokenizer(PROMPTS, return_tensors="pt", padding=True))


def _hf_attentions(model: StandardizedTransformer, batch: dict) -> tuple[torch.Tensor, ...]:
    position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model._module(**batch, position_ids=position_ids, output_attentions=True).attentions


# -- loading ------------------------------------------------------------------------


def test_flag_loads_eager_and_probabilities_equal_huggingface(eager):
    assert eager.config._attn_implementation == "eager"
    batch = _batch(eager)
    seen = {}
    with torch.no_grad(), eager.trace(batch):
        for index in range(eager.num_layers):
            seen[index] = eager.attention_probabilities[index].save()
    reference = _hf_attentions(eager, batch)
    for index, probabilities in seen.items():
        assert probabilities.shape == (3, eager.num_heads, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
        assert torch.equal(probabilities, reference[index])


def test_without_flag_probabilities_say_how_to_enable(sdpa):
    with pytest.raises(CapabilityError, match="enable_attention_probs=True") as caught:
        with sdpa.trace("Hi"):
            sdpa.attention_probabilities[0].save()
    assert "attn_implementation='sdpa'" in str(caught.value)
    assert "attention_patterns" in str(caught.value)


def test_conflicting_attn_implementation_is_refused(llama_folder):
    with pytest.raises(AttentionImplementationError, match="attn_implementation='sdpa'"):
        StandardizedTransformer(str(llama_folder), enable_attention_probs=True, attn_implementation="sdpa")


def test_flag_switches_a_loaded_model_object_to_eager():
    hf_model, tokenizer = build_tiny("gpt2", attn_implementation="sdpa")
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer, enable_attention_probs=True)
    assert hf_model.config._attn_implementation == "eager"
    with torch.no_grad(), model.trace("The cat sat"):
        probabilities = model.attention_probabilities[-1].save()
    assert probabilities.shape == (1, model.num_heads, 4, 4)
    assert torch.allclose(probabilities.sum(-1), torch.ones(1, model.num_heads, 4))


def test_flag_on_an_adapter_without_attention_spec_is_refused():
    llama = default_registry().adapter("llama")
    bare = dataclasses.replace(llama, name="bare-llama", attention=None, heads=None)
    hf_model, tokenizer = build_tiny("llama")
    with pytest.raises(CapabilityError, match="declares no `attention` spec"):
        StandardizedTransformer(hf_model, tokenizer=tokenizer, adapter=bare, enable_attention_probs=True)
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer, adapter=bare, check=False)
    with pytest.raises(CapabilityError, match="declares no `heads` spec"):
        with model.trace("Hi"):
            model.queries[0].save()


def test_a_config_the_plugin_refuses_names_the_reason():
    hf_model, tokenizer = build_tiny("gpt2", overrides={"reorder_and_upcast_attn": True})
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer, enable_attention_probs=True)
    with pytest.raises(CapabilityError, match="reorder_and_upcast_attn"):
        with model.trace("Hi"):
            model.attention_probabilities[0].save()


# -- reading and writing --------------------------------------------------------------


def test_print_source_shows_the_hooked_code(eager):
    out = io.StringIO()
    text = eager.attention_probabilities.print_source(1, file=out)
    assert out.getvalue().strip() == text.strip()
    assert "attention_interface_1" in text and "nn_functional_dropout_0" in text
    assert "--> " in text and "softmax" in text


def test_writing_probabilities_changes_the_output_and_identity_does_not(eager):
    batch = _batch(eager)
    with torch.no_grad(), eager.trace(batch):
        plain = eager.logits.save()
    with torch.no_grad(), eager.trace(batch):
        eager.attention_probabilities[0] = eager.attention_probabilities[0].clone()
        identity = eager.logits.save()
    with torch.no_grad(), eager.trace(batch):
        probabilities = eager.attention_probabilities[0]
        eager.attention_probabilities[0] = torch.zeros_like(probabilities)
        zeroed_attention = eager.attentions_output[0].save()
    assert torch.equal(identity, plain)
    bias = eager.layers[0].self_attn.o_proj._module.bias
    expected = torch.zeros_like(zeroed_attention) if bias is None else bias.expand_as(zeroed_attention)
    assert torch.equal(zeroed_attention, expected)


def test_head_ablation_zeroes_exactly_that_head(eager):
    batch = _batch(eager)
    with torch.no_grad(), eager.trace(batch):
        manual = eager.heads_output[1].clone()
        manual[:, :, 2] = 0
        eager.heads_output[1] = manual
        manual_logits = eager.logits.save()
    with torch.no_grad(), eager.trace(batch):
        eager.ablate_heads(1, [2])
        ablated_heads = eager.heads_output[1].save()
        ablated_logits = eager.logits.save()
    with torch.no_grad(), eager.trace(batch):
        plain = eager.logits.save()
    assert torch.equal(ablated_logits, manual_logits)
    assert not torch.equal(ablated_logits, plain)
    assert torch.equal(ablated_heads[:, :, 2], torch.zeros_like(ablated_heads[:, :, 2]))


def test_patterns_under_sdpa_equal_eager_probabilities(eager, sdpa):
    batch = _batch(eager)
    with torch.no_grad(), sdpa.trace(batch):
        patterns = sdpa.attention_patterns(1).save()
    with torch.no_grad(), eager.trace(batch):
        probabilities = eager.attention_probabilities[1].save()
    assert torch.allclose(patterns, probabilities, atol=1e-6, rtol=0)


def test_patterns_follow_generation_with_a_cache(eager):
    pairs = []
    with eager.generate(PROMPTS[:2], max_new_tokens=3, min_new_tokens=3) as tracer:
        for _ in tracer.iter[:3]:
            pattern = eager.attention_patterns(1)
            pairs.append((pattern.save(), eager.attention_probabilities[1].save()))
    length = eager.tokenizer(PROMPTS[:2], return_tensors="pt", padding=True)["input_ids"].shape[1]
    assert [tuple(p.shape[-2:]) for p, _ in pairs] == [(length, length), (1, length + 1), (1, length + 2)]
    for pattern, probabilities in pairs:
        assert torch.allclose(pattern, probabilities, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen3", "apertus"])
def test_conformance_checks_pass(family):
    hf_model, tokenizer = build_tiny(family)
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer)
    for name in ("attention_probabilities", "heads", "attention_patterns"):
        CHECKS[name].function(model)


# -- bad inputs -------------------------------------------------------------------------


def test_head_index_out_of_range(eager):
    with pytest.raises(LayerIndexError, match=r"head index 4 is out of range: the model has num_heads=4"):
        with eager.trace("Hi"):
            eager.ablate_heads(0, 4)
    with pytest.raises(LayerIndexError, match="no head was given"):
        with eager.trace("Hi"):
            eager.ablate_heads(0, [])


def test_layer_index_out_of_range(eager):
    with pytest.raises(LayerIndexError, match="layer index 2 is out of range"):
        with eager.trace("Hi"):
            eager.attention_probabilities[2].save()
    with pytest.raises(LayerIndexError, match="layer index -3 is out of range"):
        with eager.trace("Hi"):
            eager.heads_output[-3].save()


@pytest.mark.parametrize(
    "accessor, wrong",
    [
        ("attention_probabilities", torch.zeros(1, 4, 3, 1)),
        ("heads_output", torch.zeros(1, 2, 4, 4)),
        ("queries", torch.zeros(1, 2, 2, 8)),
        ("values", "not a tensor"),
    ],
)
def test_wrong_shape_written(eager, accessor, wrong):
    with pytest.raises(ShapeError, match=rf"{accessor}\[0\] has shape .* but the value written is"):
        with eager.trace("Hi"):
            getattr(eager, accessor)[0] = wrong


def test_wrong_shape_written_to_fused_projection():
    hf_model, tokenizer = build_tiny("gpt2")
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer)
    with pytest.raises(ShapeError, match=r"keys\[1\] has shape \(1, 4, 2, 8\)"):
        with model.trace("Hi"):
            model.keys[1] = torch.zeros(1, 4, 2, 4)


def test_rotated_values_are_read_only(eager):
    with pytest.raises(AccessorAssignmentError, match=r"rotated_queries\[0\]` is read-only.*model.queries\[0\]"):
        eager.rotated_queries[0] = torch.zeros(1)


def test_missing_point_names_plugin_version_and_existing_labels(eager, llama_folder):
    llama = eager.adapter
    # A first-level point is resolved at load; a point inside the called function in the trace.
    missing_call = dataclasses.replace(llama, attention=AttentionSpec(Called("attention_interface", occurrence=5)))
    with pytest.raises(SourceLabelError) as caught:
        StandardizedTransformer(str(llama_folder), adapter=missing_call, enable_attention_probs=True)
    message = str(caught.value)
    assert "call #5 of the call of `attention_interface(...)` in the forward of LlamaAttention" in message
    assert f"plugin {llama.plugin}" in message and f"nnsight {nnsight.__version__}" in message
    assert "Labels that exist: " in message and "attention_interface_1" in message
    inner = dataclasses.replace(
        llama, attention=AttentionSpec(Inside(Called("attention_interface"), Called("softmax_dropout")))
    )
    model = StandardizedTransformer(str(llama_folder), adapter=inner, enable_attention_probs=True)
    with pytest.raises(SourceLabelError) as caught:
        with model.trace("Hi"):
            model.attention_probabilities[0].save()
    message = str(caught.value)
    assert "the function called at 'attention_interface_1'" in message
    assert "nn_functional_dropout_0" in message


# -- declarations -----------------------------------------------------------------------


def test_declarations_claim_capabilities_and_malformed_ones_are_refused():
    heads = HeadsSpec(output_projection="o_proj", attention_call=Called("attention_interface"), fused_projection="qkv")
    adapter = Adapter(name="x", model_types=("x",), attention=AttentionSpec(Called("f")), heads=heads)
    assert {Capability.ATTENTION_PROBABILITIES, Capability.HEADS} <= adapter.capabilities
    adapter.validate("test-plugin")
    call = Called("attention_interface")
    for attention, heads, problem in (
        (AttentionSpec(""), None, "`probabilities` is an empty label"),
        (AttentionSpec(3), None, "must be a point"),
        (None, HeadsSpec(output_projection="o_proj", attention_call=call), "declare `queries`, `keys` and `values`"),
        (None, HeadsSpec(output_projection="", attention_call=call, fused_projection="qkv"), "`output_projection` must be"),
        (None, HeadsSpec(output_projection="o", attention_call="c_0", fused_projection="qkv"), "must be nnrosetta.Called"),
        ("labels", None, "is a str"),
    ):
        with pytest.raises(InvalidAdapterError, match=problem) as caught:
            Adapter(name="x", model_types=("x",), attention=attention, heads=heads).validate("test-plugin")
        assert "plugin 'test-plugin'" in str(caught.value)
