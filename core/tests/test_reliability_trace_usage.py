"""nnsight's own errors reach users of the standard names in nnrosetta's words, and leave the model as it was."""

from __future__ import annotations

import threading

import pytest
import torch

from nnrosetta import InvalidInputError, StandardizedTransformer
from nnrosetta.errors import ReadOrderError, TraceUsageError
from nnrosetta.interventions import activation_patching, attribution_patching
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of France is", "Hi"]


@pytest.fixture(scope="module")
def llama() -> StandardizedTransformer:
    model, tokenizer = build_tiny("llama")
    return StandardizedTransformer(model, tokenizer=tokenizer)


def logits_of(model: StandardizedTransformer) -> torch.Tensor:
    with torch.no_grad(), model.trace(PROMPTS):
        logits = model.logits.save()
    return logits


def test_a_read_out_of_forward_order_names_the_accessor_and_how_to_reorder(llama):
    with pytest.raises(ReadOrderError) as raised:
        with llama.trace(PROMPTS):
            llama.layers_output[1].save()
            llama.mlps_output[0].save()
    message = str(raised.value)
    assert message.startswith("`mlps_output[0]` was read after the forward pass had already run past it")
    assert "reads and writes must follow forward order" in message
    assert "read layers_output[0] before layers_output[1]" in message


def test_a_raw_module_read_out_of_order_is_named_by_its_standard_name(llama):
    with pytest.raises(ReadOrderError, match=r"`layers_output\[0\]` \(nnsight's model.model.layers.0.output.i0\) was read after"):
        with llama.trace(PROMPTS):
            llama.layers[1].output.save()
            llama.layers[0].output.save()


@pytest.mark.parametrize("read", [lambda m: m.layers_output[0], lambda m: m.logits, lambda m: m.token_embeddings, lambda m: m.input_ids])
def test_a_standard_value_read_outside_a_trace_says_to_trace_and_save(llama, read):
    with pytest.raises(TraceUsageError, match=r"is a value of a running forward pass, so it exists only inside a trace") as raised:
        read(llama)
    assert ".save()" in str(raised.value)


def test_a_value_used_after_the_trace_without_save_says_to_save_it(llama):
    with torch.no_grad(), llama.trace(PROMPTS):
        hidden = llama.layers_output[0]
        logits = llama.logits.save()
    assert logits.shape == (2, 8, 384)
    words = r"`hidden` was assigned inside the trace but not saved.*write `hidden = <value>.save\(\)`"
    with pytest.raises(TraceUsageError, match=words):
        hidden.shape
    with pytest.raises(TraceUsageError, match=words):
        hidden + 1
    with pytest.raises(TraceUsageError, match=words):
        torch.equal(hidden, logits)
    assert "not saved in the trace" in repr(hidden)


def test_values_shared_inside_a_session_need_no_save(llama):
    with torch.no_grad(), llama.session():
        with llama.trace(PROMPTS):
            first = llama.layers_output[0]
        with llama.trace(PROMPTS):
            llama.layers_output[0] = first
            logits = llama.logits.save()
    assert torch.equal(logits, logits_of(llama))


def test_a_trace_inside_a_trace_of_the_same_model_is_refused(llama):
    before = logits_of(llama)
    with pytest.raises(TraceUsageError, match="a trace of this model was opened inside a running trace of the same model") as raised:
        with llama.trace(PROMPTS):
            with llama.trace(PROMPTS):
                llama.logits.save()
    assert "`with model.session():`" in str(raised.value)
    assert torch.equal(logits_of(llama), before)


def test_a_metric_that_is_not_a_scalar_is_refused_by_activation_patching(llama):
    with pytest.raises(InvalidInputError, match=r"activation_patching: the metric must return one number for the last-token logits of shape \(2, 384\).*it returned \(2,\)"):
        activation_patching(llama, ["The cat sat on", "A dog ran"], ["The dog sat on", "A cat ran"], metric=lambda logits: logits[:, 3])


def test_a_metric_without_a_gradient_is_refused_by_attribution_patching(llama):
    with pytest.raises(InvalidInputError, match="attribution_patching: the metric's value does not depend differentiably on the logits"):
        attribution_patching(llama, ["The cat sat on"], ["The dog sat on"], metric=lambda logits: torch.tensor(logits[0, 3].item()))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError, ReadOrderError])
def test_any_exception_inside_a_trace_leaves_the_model_bit_identical(llama, interrupt):
    weights = {k: v.clone() for k, v in llama._module.state_dict().items()}
    before = logits_of(llama)
    with pytest.raises(interrupt):
        with torch.no_grad(), llama.trace(PROMPTS):
            llama.layers_output[0] = llama.layers_output[0] * 100
            llama.steer(1, torch.ones(llama.hidden_size))
            raise interrupt("stop here")
    assert not llama.interleaver.interleaving
    taken = []

    def take_and_release() -> None:
        lock = llama.__dict__["_trace_lock"]
        taken.append(lock.acquire(timeout=5))
        lock.release()

    other = threading.Thread(target=take_and_release)
    other.start()
    other.join()
    assert taken == [True]  # released: another thread can trace this model
    assert all(torch.equal(weights[k], v) for k, v in llama._module.state_dict().items())
    assert torch.equal(logits_of(llama), before)
