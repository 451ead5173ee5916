"""logit_lens on tiny models of every family: exact against a plain-PyTorch reference."""

from __future__ import annotations

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, standard_module, tiny_model

from nnrosetta import InvalidInputError, LayerIndexError
from nnrosetta.interventions import logit_lens

PROMPTS = ["The capital of France is", "The cat sat"]


@pytest.fixture(params=family_params())
def model(request):
    return tiny_model(request.param)


def test_last_layer_is_next_token_probs_and_each_layer_matches_hooks(model):
    with count_forwards(model) as forwards:
        probs = logit_lens(model, PROMPTS)
    assert len(forwards) == 1  # every layer read in one trace
    assert probs.shape == (2, model.num_layers, model.vocab_size)
    encoding = encode(model, PROMPTS)
    modules = {str(i): standard_module(model, "layers", i) for i in range(model.num_layers)}
    logits, hidden = hf_forward(model, encoding, capture=modules)
    assert torch.equal(probs[:, -1], logits[:, -1].softmax(-1))
    stacked = torch.stack([hidden[str(layer)][:, [-1]] for layer in range(model.num_layers)], dim=1)
    with torch.no_grad():  # projected as one (batch, layers, 1, hidden) block, as the lens does
        expected = model.project_on_vocab(stacked).softmax(-1)[:, :, 0]
    assert torch.equal(probs, expected)


def test_final_projection_is_the_adapters(model):
    """Soft-capped families: lm_head(ln_final(h)) is not the logits, and the lens is still right."""
    if model.adapter.final_projection is None:
        pytest.skip(f"adapter {model.adapter.name!r} projects with lm_head(ln_final(h)) alone")
    encoding = encode(model, PROMPTS)
    logits, hidden = hf_forward(model, encoding, capture={"last": standard_module(model, "layers", -1)})
    with torch.no_grad():
        plain = model.lm_head(model.ln_final(hidden["last"]))
    assert not torch.allclose(plain, logits)
    assert torch.equal(logit_lens(model, PROMPTS)[:, -1], logits[:, -1].softmax(-1))


def test_all_positions_and_chosen_layers(model):
    every = logit_lens(model, PROMPTS, positions=None)
    width = encode(model, PROMPTS)["input_ids"].shape[1]
    assert every.shape == (2, model.num_layers, width, model.vocab_size)
    some = logit_lens(model, PROMPTS, positions=[0, -1], layers=[-1])
    assert some.shape == (2, 1, 2, model.vocab_size)
    assert torch.equal(some[:, 0], every[:, -1][:, [0, width - 1]])
    assert torch.allclose(every.sum(-1), torch.ones(every.shape[:-1]), atol=1e-5)


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        ({"prompts": []}, InvalidInputError, "empty"),
        ({"prompts": ["ok", ""]}, InvalidInputError, "tokenizes to no tokens"),
        ({"prompts": PROMPTS, "layers": [5]}, LayerIndexError, "num_layers=2"),
        ({"prompts": PROMPTS, "layers": []}, LayerIndexError, "empty"),
        ({"prompts": PROMPTS, "positions": 40}, LayerIndexError, "tokens long"),
    ],
)
def test_bad_input_fails_before_any_forward(arguments, error, words):
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(error, match=words):
        logit_lens(model, **arguments)
    assert forwards == []
