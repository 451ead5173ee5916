"""Values written into the forward pass, or handed to the methods, are refused when they would be silently wrong."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import LayerIndexError, ShapeError, StandardizedTransformer
from nnrosetta.errors import InvalidValueError
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of France is", "Hi"]
SHAPE = (2, 8, 32)  # the tiny llama's (batch, seq, hidden) for PROMPTS


@pytest.fixture(scope="module")
def llama() -> StandardizedTransformer:
    model, tokenizer = build_tiny("llama")
    return StandardizedTransformer(model, tokenizer=tokenizer)


def logits_after(model: StandardizedTransformer, intervene) -> torch.Tensor:
    with torch.no_grad(), model.trace(PROMPTS):
        intervene(model)
        logits = model.logits.save()
    return logits


def write(name: str, value: torch.Tensor):
    return lambda model: getattr(model, name).__setitem__(0, value)


@pytest.mark.parametrize(
    "value, words",
    [
        (torch.ones(SHAPE, dtype=torch.int64), r"layers_output\[0\] is torch.float32 but the value written is torch.int64"),
        (torch.ones(SHAPE, dtype=torch.float64), r"is torch.float32 but the value written is torch.float64.*value.to\(torch.float32\)"),
        (torch.ones(SHAPE, device="meta"), r"layers_output\[0\]: the value written is on the meta device"),
    ],
)
def test_a_write_of_the_wrong_dtype_or_device_is_refused(llama, value, words):
    with pytest.raises(InvalidValueError, match=words):
        logits_after(llama, write("layers_output", value))


@pytest.mark.parametrize("name", ["layers_output", "mlps_output", "attentions_output", "layers_input"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_write_is_refused_with_the_opt_out(llama, name, bad):
    value = torch.zeros(SHAPE)
    value[0, -1, 3] = bad
    with pytest.raises(InvalidValueError, match=rf"{name}\[0\]: the value written holds 1 NaN or inf entries") as raised:
        logits_after(llama, write(name, value))
    assert "`model.allow_non_finite_writes = True`" in str(raised.value)


def test_non_finite_writes_are_written_when_allowed(llama):
    value = torch.zeros(SHAPE)
    value[0, -1, 3] = float("nan")
    llama.allow_non_finite_writes = True
    try:
        logits = logits_after(llama, write("layers_output", value))
    finally:
        llama.allow_non_finite_writes = False
    assert torch.isnan(logits[0, -1]).all() and not torch.isnan(logits[1]).any()


def test_a_non_finite_steering_vector_is_refused(llama):
    vector = torch.zeros(32)
    vector[5] = float("inf")
    with pytest.raises(InvalidValueError, match="steering_vector holds 1 NaN or inf entries"):
        logits_after(llama, lambda model: model.steer(0, vector))
    with pytest.raises(InvalidValueError, match="steering_vector has dtype torch.int64"):
        logits_after(llama, lambda model: model.steer(0, torch.zeros(32, dtype=torch.long)))


def test_logits_writes_are_shape_checked(llama):
    def write_logits(model):
        model.logits = torch.zeros(3)

    with pytest.raises(ShapeError, match=r"logits has shape \(2, 8, 384\) \(batch, seq, vocab\) but the value written has shape \(3,\)"):
        logits_after(llama, write_logits)
    zeros = torch.zeros(2, 8, 384)

    def zero_logits(model):
        model.logits = zeros

    with torch.no_grad(), llama.trace(PROMPTS):
        zero_logits(llama)
        probs = llama.next_token_probs.save()
    assert torch.equal(probs, torch.full((2, 384), 1 / 384))


def test_token_embeddings_writes_are_checked(llama):
    def write_embeddings(model):
        model.token_embeddings = torch.zeros(SHAPE, dtype=torch.float64)

    with pytest.raises(InvalidValueError, match="token_embeddings is torch.float32 but the value written is torch.float64"):
        logits_after(llama, write_embeddings)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda m: m.steer(1.5, torch.zeros(32)), LayerIndexError, r"layers must be a layer index or a list of them, got float 1.5"),
        (lambda m: m.steer(0, torch.zeros(32), token_positions=[9]), LayerIndexError, r"token_positions holds 9, but the trace has 8 tokens; use 0..7"),
        (lambda m: m.steer(0, torch.zeros(32), batch_index=2), LayerIndexError, r"batch_index holds 2, but the trace has 2 rows"),
        (lambda m: m.steer(0, torch.zeros(32), token_positions=1.0), LayerIndexError, r"token_positions must be an int, a non-empty list of ints or a slice, got 1.0"),
        (lambda m: m.skip_layers(0, 1, skip_with=torch.zeros(2, 3, 32)), ShapeError, r"skip_with has shape \(2, 3, 32\), but layers 0..1 pass on a hidden state of shape \(2, 8, 32\)"),
        (lambda m: m.skip_layers(0, 1, skip_with=torch.zeros(SHAPE, dtype=torch.float64)), InvalidValueError, "skip_with is torch.float32 but the value written is torch.float64"),
        (lambda m: m.layers[100].output, LayerIndexError, r"layer index 100 is out of range: the model has num_layers=2"),
    ],
)
def test_bad_method_arguments_in_a_trace_name_the_value(llama, call, error, words):
    with pytest.raises(error, match=words):
        logits_after(llama, call)


def test_steering_selections_in_range_still_steer_exactly_there(llama):
    vector = torch.ones(32)
    with torch.no_grad(), llama.trace(PROMPTS):
        plain = llama.layers_output[1].save()
    with torch.no_grad(), llama.trace(PROMPTS):
        llama.steer(1, vector, token_positions=[-1], batch_index=[1])
        steered = llama.layers_output[1].save()
    expected = plain.clone()
    expected[1, -1] += vector
    assert torch.equal(steered, expected)


@pytest.mark.parametrize(
    "hidden, error, words",
    [
        (torch.zeros(2, 32, dtype=torch.float64), InvalidValueError, r"project_on_vocab: `hidden` is torch.float64 but the model computes in torch.float32"),
        ([0.0] * 32, ShapeError, r"project_on_vocab expects `hidden` to be a torch.Tensor with last dimension hidden_size=32, got list"),
        (torch.zeros(2, 31), ShapeError, r"project_on_vocab expects a last dimension of hidden_size=32, got shape \(2, 31\)"),
    ],
)
def test_project_on_vocab_refuses_what_it_cannot_project(llama, hidden, error, words):
    with pytest.raises(error, match=words):
        llama.project_on_vocab(hidden)
