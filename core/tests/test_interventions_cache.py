"""run_with_cache and ActivationCache on tiny models of every family."""

from __future__ import annotations

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, standard_module, tiny_model

from nnrosetta import Capability, CapabilityError, InvalidInputError, LayerIndexError
from nnrosetta.interventions import ActivationCache, run_with_cache

PROMPTS = ["The capital of France is", "The cat sat"]


@pytest.fixture(params=family_params())
def model(request):
    return tiny_model(request.param)


def test_default_names_hold_the_hooked_values(model):
    with count_forwards(model) as forwards:
        cache = run_with_cache(model, PROMPTS)
    assert len(forwards) == 1
    layers = range(model.num_layers)
    assert list(cache) == ["token_embeddings"] + [
        f"{kind}.{i}" for i in layers for kind in ("attentions_output", "mlps_output", "layers_output")
    ] + ["logits"]
    modules = {f"{c}_output.{i}": standard_module(model, c, i) for i in layers for c in ("layers", "attentions", "mlps")}
    modules["token_embeddings"] = model.embed_tokens._module
    logits, captured = hf_forward(model, encode(model, PROMPTS), capture=modules)
    for name, value in captured.items():
        assert torch.equal(cache[name], value), name
    assert torch.equal(cache["logits"], logits)
    assert all(t.device.type == "cpu" and not t.requires_grad for t in cache.values())
    assert cache.nbytes == sum(t.numel() * t.element_size() for t in cache.values())


def test_filters_keep_only_what_is_asked(model):
    one = run_with_cache(model, PROMPTS, names=["layers_output.-1"])
    assert list(one) == [f"layers_output.{model.num_layers - 1}"]
    assert torch.equal(one["layers_output", -1], one[f"layers_output.{model.num_layers - 1}"])
    inputs = run_with_cache(model, PROMPTS, names=["mlps_input", "layers_input.0"])
    assert list(inputs) == ["layers_input.0"] + [f"mlps_input.{i}" for i in range(model.num_layers)]
    assert inputs.stack("mlps_input").shape == (model.num_layers, *inputs["mlps_input.0"].shape)
    chosen = run_with_cache(model, PROMPTS, names=lambda name: name.endswith(".0") and name.split(".")[0] in ("attentions_output", "mlps_output", "layers_output"))
    assert list(chosen) == ["attentions_output.0", "mlps_output.0", "layers_output.0"]
    with pytest.raises(KeyError, match="names=\\['logits'\\]"):
        chosen["logits"]


def test_attention_probabilities_when_served(model):
    if Capability.ATTENTION_PROBABILITIES not in model.adapter.capabilities:
        with count_forwards(model) as forwards, pytest.raises(CapabilityError, match="attention"):
            run_with_cache(model, PROMPTS, names=["attention_probabilities.0"])
        assert forwards == []
        return
    if model.config._attn_implementation != "eager":  # refused before running
        with count_forwards(model) as forwards, pytest.raises(CapabilityError, match="eager"):
            run_with_cache(model, PROMPTS, names=["attention_probabilities.0"])
        assert forwards == []
    eager = tiny_model(model.config.model_type, enable_attention_probs=True)
    cache = run_with_cache(eager, PROMPTS, names=["attention_probabilities.1", "layers_output.1"])
    probabilities = cache["attention_probabilities.1"]
    width = encode(eager, PROMPTS)["input_ids"].shape[1]
    assert probabilities.shape == (2, eager.num_heads, width, width)
    assert torch.allclose(probabilities.sum(-1), torch.ones(2, eager.num_heads, width), atol=1e-5)
    mask = encode(eager, PROMPTS)["attention_mask"].bool()
    assert torch.equal(probabilities[0].triu(1), torch.zeros(eager.num_heads, width, width))  # causal
    to_padding = probabilities[1][:, mask[1]][:, :, ~mask[1]]  # real queries of the padded prompt
    assert to_padding.numel() > 0 and torch.equal(to_padding, torch.zeros_like(to_padding))


def test_router_logits_for_mixture_of_experts(model):
    if Capability.MOE not in model.adapter.capabilities:
        with pytest.raises(CapabilityError, match="routers_output"):
            run_with_cache(model, PROMPTS, names="routers_output")
        return
    cache = run_with_cache(model, PROMPTS, names=["routers_output", "mlps_output.0"])
    assert list(cache)[:2] == ["routers_output.0", "mlps_output.0"]
    width = encode(model, PROMPTS)["input_ids"].shape[1]
    assert cache["routers_output.0"].shape[-1] == model.num_experts
    assert cache["routers_output.0"].numel() == 2 * width * model.num_experts


@pytest.mark.parametrize(
    "names, error, words",
    [
        (["residual.3"], InvalidInputError, "not a cacheable name"),
        (["layers_output.7"], LayerIndexError, "num_layers=2"),
        (["layers_output.x"], InvalidInputError, "layer number"),
        ([], InvalidInputError, "keeps nothing"),
        (lambda name: False, InvalidInputError, "keeps none"),
    ],
)
def test_bad_names_fail_before_any_forward(names, error, words):
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(error, match=words):
        run_with_cache(model, PROMPTS, names=names)
    assert forwards == []


def test_cache_is_a_mapping():
    cache = ActivationCache({"layers_output.0": torch.ones(2)}, num_layers=2)
    assert dict(cache) == {"layers_output.0": cache["layers_output", 0]} and len(cache) == 1
    assert "1 tensors" in repr(cache)
    with pytest.raises(KeyError, match="mlps_output"):
        cache.stack("mlps_output")
