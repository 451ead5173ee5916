"""activation_patching and attribution_patching on tiny models of every family.

Activation patching is checked exactly against hooked plain-PyTorch forwards;
attribution patching against activation patching: exactly where the model is
linear in the patched activation (final norm removed), by correlation elsewhere.
"""

from __future__ import annotations

import math

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, is_moe, standard_module, tiny_model

from nnrosetta import InvalidInputError, LayerIndexError, StandardizedTransformer
from nnrosetta.interventions import activation_patching, attribution_patching, logit_difference, token_logit
from nnrosetta_conformance.tiny import build_tiny

# Pairs that tokenize to the same lengths with the tiny tokenizer (7 tokens each).
CLEAN = ["The capital of Spain is", "The cat sat on the"]
CORRUPTED = ["The capital of England is", "The dog sat on the"]
#: Lowest correlation accepted between attribution and activation patching on the unmodified
#: tiny models (measured: see test_attribution_correlates_with_activation_patching's output).
MIN_CORRELATION = 0.7


@pytest.fixture(params=family_params())
def model(request):
    return tiny_model(request.param)


@pytest.mark.parametrize("component", ["layers", "attentions", "mlps"])
def test_each_entry_matches_a_hooked_forward(model, component):
    metric = logit_difference([5, 9], [7, 11])
    positions = [0, 3, -1]
    effects = activation_patching(
        model, CLEAN, CORRUPTED, positions=positions, component=component, metric=metric, batch_size=1
    )
    assert effects.shape == (model.num_layers, len(positions))
    clean, corrupted = encode(model, CLEAN), encode(model, CORRUPTED)
    modules = {str(i): standard_module(model, component, i) for i in range(model.num_layers)}
    _, clean_values = hf_forward(model, clean, capture=modules)
    baseline = metric(hf_forward(model, corrupted)[0][:, -1])
    for layer in range(model.num_layers):
        for column, position in enumerate(positions):

            def patch(value, layer=layer, position=position):
                value = value.clone()
                value[:, position] = clean_values[str(layer)][:, position]
                return value

            logits, _ = hf_forward(model, corrupted, replace=(modules[str(layer)], patch))
            assert torch.equal(effects[layer, column], metric(logits[:, -1]) - baseline), (layer, position)


def test_identical_prompts_have_no_effect_and_last_layer_restores_clean(model):
    zero = activation_patching(model, CLEAN, CLEAN, batch_size=1)
    assert torch.equal(zero, torch.zeros_like(zero))
    metric = token_logit([5, 9])
    effects = activation_patching(model, CLEAN, CORRUPTED, layers=-1, metric=metric, batch_size=1)
    clean_logits, _ = hf_forward(model, encode(model, CLEAN))
    corrupted_logits, _ = hf_forward(model, encode(model, CORRUPTED))
    # Only the last position of the last layer reaches the last logits, and restores them fully.
    assert torch.equal(effects[0, -1], metric(clean_logits[:, -1]) - metric(corrupted_logits[:, -1]))
    assert torch.equal(effects[0, :-1], torch.zeros(effects.shape[1] - 1))


def test_batching_shares_forward_passes(model):
    layers, positions = [0, 1], [-2, -1]
    runs = len(layers) * len(positions)
    with count_forwards(model) as one_by_one:
        single = activation_patching(model, CLEAN, CORRUPTED, layers=layers, positions=positions, batch_size=1)
    with count_forwards(model) as by_three:
        three = activation_patching(model, CLEAN, CORRUPTED, layers=layers, positions=positions, batch_size=3)
    with count_forwards(model) as together:
        stacked = activation_patching(model, CLEAN, CORRUPTED, layers=layers, positions=positions)
    # One clean pass, then the corrupted baseline and the patched runs, batch_size runs per pass.
    assert (len(one_by_one), len(by_three), len(together)) == (1 + runs + 1, 1 + math.ceil((runs + 1) / 3), 2)
    if is_moe(model):  # experts see a bigger token group, which changes rounding only
        assert torch.allclose(three, single, atol=1e-5) and torch.allclose(stacked, single, atol=1e-5)
    else:
        assert torch.equal(three, single) and torch.equal(stacked, single)


@pytest.mark.parametrize("family", family_params())
def test_attribution_is_exact_where_the_model_is_linear_in_the_activation(family):
    """With the final norm removed, the last layer's outputs reach the logits linearly.

    Families whose adapter adds a final projection (soft-capping) stay non-linear: skipped.
    """
    hf_model, tokenizer = build_tiny(family)
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer)
    if model.adapter.final_projection is not None:
        pytest.skip(f"{family}: the adapter's final projection is not linear in the hidden state")
    model.ln_final._module.forward = lambda hidden: hidden  # this model's logits are lm_head(h)
    metric = logit_difference([5, 9], [7, 11])
    for component in ("layers", "mlps"):
        exact = activation_patching(model, CLEAN, CORRUPTED, layers=-1, component=component, metric=metric)
        estimate = attribution_patching(model, CLEAN, CORRUPTED, layers=-1, component=component, metric=metric)
        assert torch.allclose(estimate, exact, atol=1e-5, rtol=1e-4), (component, estimate, exact)
        assert torch.equal(exact[0, :-1], torch.zeros(exact.shape[1] - 1)) and exact[0, -1] != 0


def test_attribution_correlates_with_activation_patching(model, record_property):
    with count_forwards(model) as forwards:
        estimate = attribution_patching(model, CLEAN, CORRUPTED)
    assert len(forwards) == 2  # clean and corrupted; the backward pass is not a forward
    assert all(p.grad is None for p in model._module.parameters())  # no gradient left on the weights
    exact = activation_patching(model, CLEAN, CORRUPTED)
    assert estimate.shape == exact.shape
    correlation = float(torch.corrcoef(torch.stack([estimate.flatten(), exact.flatten()]))[0, 1])
    record_property("correlation", correlation)
    print(f"\n{model.config.model_type}: attribution vs activation patching correlation {correlation:.4f}")
    assert correlation > MIN_CORRELATION


def test_attribution_on_a_frozen_model():
    hf_model, tokenizer = build_tiny("llama")
    hf_model.requires_grad_(False)
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer)
    frozen = attribution_patching(model, CLEAN, CORRUPTED, component="attentions")
    assert torch.equal(frozen, attribution_patching(tiny_model("llama"), CLEAN, CORRUPTED, component="attentions"))


@pytest.mark.parametrize("method", [activation_patching, attribution_patching])
@pytest.mark.parametrize(
    "arguments, error, words",
    [
        ({"clean_prompts": CLEAN, "corrupted_prompts": CORRUPTED[:1]}, InvalidInputError, "2 clean prompts but 1"),
        ({"clean_prompts": [], "corrupted_prompts": []}, InvalidInputError, "empty"),
        ({"clean_prompts": ["The capital of France is"], "corrupted_prompts": ["The capital of Spain is"]}, InvalidInputError, "same lengths"),
        ({"clean_prompts": CLEAN, "corrupted_prompts": CORRUPTED, "layers": [0, 9]}, LayerIndexError, "out of range"),
        ({"clean_prompts": CLEAN, "corrupted_prompts": CORRUPTED, "positions": [7]}, LayerIndexError, "tokens long"),
        ({"clean_prompts": CLEAN, "corrupted_prompts": CORRUPTED, "component": "heads"}, InvalidInputError, "component='heads'"),
        ({"clean_prompts": CLEAN, "corrupted_prompts": CORRUPTED, "metric": 3}, InvalidInputError, "metric"),
    ],
)
def test_bad_input_fails_before_any_forward(method, arguments, error, words):
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(error, match=words):
        method(model, **arguments)
    assert forwards == []


def test_bad_batch_size_fails_before_any_forward():
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(InvalidInputError, match="batch_size"):
        activation_patching(model, CLEAN, CORRUPTED, batch_size=0)
    assert forwards == []
