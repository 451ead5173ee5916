"""steering_vector (difference of means) on tiny models of every family, used with model.steer."""

from __future__ import annotations

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, standard_module, tiny_model

from nnrosetta import InvalidInputError, LayerIndexError
from nnrosetta.interventions import steering_vector

POSITIVE = ["I love the sunny days", "The weather is nice today"]
NEGATIVE = ["I hate the cold rain"]


@pytest.fixture(params=family_params())
def model(request):
    return tiny_model(request.param)


def test_difference_of_means_matches_hooked_forwards(model):
    with count_forwards(model) as forwards:
        vector = steering_vector(model, POSITIVE, NEGATIVE, layer=1)
    assert len(forwards) == 2 and vector.shape == (model.hidden_size,)
    module = {"out": standard_module(model, "layers", 1)}
    positive = hf_forward(model, encode(model, POSITIVE), capture=module)[1]["out"][:, -1]
    negative = hf_forward(model, encode(model, NEGATIVE), capture=module)[1]["out"][:, -1]
    assert torch.equal(vector, positive.mean(0) - negative.mean(0))
    # Steering the negative prompt by the vector moves its state onto the positive mean.
    with torch.no_grad(), model.trace(NEGATIVE[0]):
        model.steer(1, vector, factor=1.0, token_positions=-1)
        steered = model.layers_output[1][0, -1].save()
    assert torch.allclose(steered, positive.mean(0), atol=1e-5)


def test_position_selects_the_token(model):
    first = steering_vector(model, POSITIVE[:1], NEGATIVE, layer=0, position=0)
    module = {"out": standard_module(model, "layers", 0)}
    positive = hf_forward(model, encode(model, POSITIVE[:1]), capture=module)[1]["out"]
    negative = hf_forward(model, encode(model, NEGATIVE), capture=module)[1]["out"]
    assert torch.equal(first, positive[0, 0] - negative[0, 0])


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        ({"positive_prompts": [], "negative_prompts": NEGATIVE, "layer": 0}, InvalidInputError, "positive_prompts"),
        ({"positive_prompts": POSITIVE, "negative_prompts": [""], "layer": 0}, InvalidInputError, "negative_prompts"),
        ({"positive_prompts": POSITIVE, "negative_prompts": NEGATIVE, "layer": 3}, LayerIndexError, "num_layers=2"),
        ({"positive_prompts": POSITIVE, "negative_prompts": NEGATIVE, "layer": 0, "position": 50}, LayerIndexError, "position"),
    ],
)
def test_bad_input_fails_before_any_forward(arguments, error, words):
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(error, match=words):
        steering_vector(model, **arguments)
    assert forwards == []
