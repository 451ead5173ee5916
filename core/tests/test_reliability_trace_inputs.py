"""What a trace is given is checked before it runs: each bad input is an nnrosetta error naming it."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import InvalidInputError, StandardizedTransformer
from nnrosetta.errors import InvalidValueError, NnrosettaError
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of France is", "Hi"]


@pytest.fixture(scope="module")
def llama() -> StandardizedTransformer:
    model, tokenizer = build_tiny("llama")
    return StandardizedTransformer(model, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def gpt2() -> StandardizedTransformer:
    model, tokenizer = build_tiny("gpt2")
    return StandardizedTransformer(model, tokenizer=tokenizer)


def logits_of(model: StandardizedTransformer, *inputs, **kwargs) -> torch.Tensor:
    with torch.no_grad(), model.trace(*inputs, **kwargs):
        logits = model.logits.save()
    return logits


def test_a_misspelt_keyword_is_refused_with_the_close_name(llama):
    with pytest.raises(InvalidInputError, match=r"keyword 'atention_mask' \(did you mean 'attention_mask'\?\)") as raised:
        logits_of(llama, PROMPTS, atention_mask=None)
    assert "neither LlamaForCausalLM.forward nor nnsight takes" in str(raised.value)
    assert "Fix the spelling or drop the keyword" in str(raised.value)


def test_keywords_the_forward_and_generate_take_still_pass(llama):
    ids = llama.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    plain = logits_of(llama, PROMPTS)
    assert torch.equal(logits_of(llama, ids["input_ids"], attention_mask=ids["attention_mask"]), plain)
    with torch.no_grad(), llama.generate(PROMPTS, max_new_tokens=2, do_sample=False) as tracer:
        generated = tracer.result.save()
    assert generated.shape == (2, ids["input_ids"].shape[1] + 2)
    with pytest.raises(InvalidInputError, match=r"`model.generate\(...\)` got the keyword 'max_new_token' \(did you mean 'max_new_tokens'\?\)"):
        with llama.generate(PROMPTS, max_new_token=2):
            pass


def test_an_empty_prompt_in_a_list_is_refused_not_run_as_padding(llama):
    with pytest.raises(InvalidInputError, match=r"prompt 1 \(''\) tokenizes to no tokens: its row would be pure padding"):
        logits_of(llama, ["hello", ""])


@pytest.mark.parametrize("prompts, words", [([], "empty prompt list"), ("", r"prompt 0 \(''\) tokenizes to no tokens")])
def test_an_empty_trace_input_is_refused(llama, prompts, words):
    with pytest.raises(InvalidInputError, match=words):
        logits_of(llama, prompts)


def test_an_all_padding_row_of_an_encoding_is_refused(llama):
    encoding = llama.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    encoding["attention_mask"][1] = 0
    with pytest.raises(InvalidInputError, match="attention_mask row 1 is all zeros"):
        logits_of(llama, dict(encoding))


def test_a_prompt_longer_than_the_rotary_positions_is_refused_with_the_override(llama):
    ids = torch.ones(1, 129, dtype=torch.long)
    with pytest.raises(
        InvalidInputError, match=r"input_ids is 129 tokens long, but the model has max_position_embeddings=128"
    ) as raised:
        logits_of(llama, ids)
    assert "`model.config.max_position_embeddings = 129`" in str(raised.value)
    assert logits_of(llama, ids[:, :128]).shape == (1, 128, llama.vocab_size)


def test_a_prompt_longer_than_learned_positions_names_n_positions(gpt2):
    text = " ".join(["word"] * 200)
    with pytest.raises(InvalidInputError, match=r"prompt 0 is \d+ tokens long, but the model has n_positions=128 positions"):
        logits_of(gpt2, [text])


def test_the_position_limit_can_be_raised_on_purpose_for_rotary_models(llama):
    ids = torch.ones(1, 130, dtype=torch.long)
    llama.config.max_position_embeddings = 130
    try:
        assert logits_of(llama, ids).shape == (1, 130, llama.vocab_size)
    finally:
        llama.config.max_position_embeddings = 128


@pytest.mark.parametrize("bad, words", [(384, "token id 384, outside the vocabulary of vocab_size=384"), (-1, "token id -1")])
def test_token_ids_outside_the_vocabulary_are_refused(llama, bad, words):
    with pytest.raises(InvalidValueError, match=words):
        logits_of(llama, torch.tensor([[1, 2, bad]]))


def test_a_float_tensor_of_ids_is_refused(llama):
    with pytest.raises(InvalidValueError, match=r"input_ids has dtype torch.float32; token ids must be an integer tensor"):
        logits_of(llama, torch.tensor([[1.0, 2.0]]))


def test_invoke_inputs_are_checked_too(llama):
    with pytest.raises(InvalidInputError, match="tokenizes to no tokens"):
        with llama.trace() as tracer:
            with tracer.invoke(""):
                llama.logits.save()


def test_every_refusal_is_an_nnrosetta_error_and_the_model_still_runs(llama):
    before = logits_of(llama, PROMPTS)
    for call in (lambda: logits_of(llama, []), lambda: logits_of(llama, torch.tensor([[999]])),
                 lambda: logits_of(llama, PROMPTS, atention_mask=None)):
        with pytest.raises(NnrosettaError):
            call()
    assert torch.equal(logits_of(llama, PROMPTS), before)


def test_a_generation_that_would_run_past_learned_positions_is_refused_before_it_starts(gpt2):
    with pytest.raises(
        InvalidInputError, match=r"the prompt \(2 tokens\) plus max_new_tokens=127 is 129 tokens long, but the model has n_positions=128"
    ):
        with gpt2.generate(torch.tensor([[1, 2]]), max_new_tokens=127):
            pass
    with torch.no_grad(), gpt2.generate(torch.tensor([[1, 2]]), max_new_tokens=3, do_sample=False) as tracer:
        ids = tracer.result.save()
    assert ids.shape == (1, 5)
