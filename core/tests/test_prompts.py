"""Prompt.from_strings (first tokens of targets) and run_prompts, on tiny models."""

from __future__ import annotations

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, tiny_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from nnrosetta import InvalidInputError
from nnrosetta.interventions import logit_lens
from nnrosetta.prompts import Prompt, first_tokens, run_prompts

CAPITALS = ["The capital of France is", "The capital of Spain is", "The cat sat on the"]


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def metaspace_tokenizer() -> PreTrainedTokenizerFast:
    """A sentencepiece-style tokenizer (spaces as '▁'), where ' Paris' may start with a lone '▁'."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never", split=False)
    trainer = trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>"], show_progress=False)
    tokenizer.train_from_iterator(["Paris.Paris.Paris is big and Paris."] * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>")


def test_first_tokens_with_and_without_a_leading_space():
    tokenizer = tiny_model("llama").tokenizer
    assert first_tokens("Paris", tokenizer) == (ids(tokenizer, "Paris")[0], ids(tokenizer, " Paris")[0])
    assert first_tokens(" Paris", tokenizer) == first_tokens("Paris", tokenizer)
    prompt = Prompt.from_strings("The capital of France is", {"target": "Paris", "other": ["London", "Madrid"]}, tokenizer)
    assert prompt.target_tokens["target"] == first_tokens("Paris", tokenizer)
    assert prompt.target_tokens["other"] == tuple(dict.fromkeys(first_tokens("London", tokenizer) + first_tokens("Madrid", tokenizer)))
    assert prompt.target_strings == {"target": ("Paris",), "other": ("London", "Madrid")}


def test_sentencepiece_space_marker_is_not_a_first_token():
    tokenizer = metaspace_tokenizer()
    spaced = ids(tokenizer, " Paris")
    assert tokenizer.decode([spaced[0]]).strip() == ""  # the tokenizer does split off a lone space marker
    tokens = first_tokens("Paris", tokenizer)
    assert all(tokenizer.decode([t]).strip() for t in tokens)
    assert tokens == (ids(tokenizer, "Paris")[0],)  # both variants start with the same real token


@pytest.mark.parametrize("targets", [{"target": "   "}, {"target": ""}, {"target": []}, {}])
def test_targets_that_tokenize_to_nothing_are_refused(targets):
    with pytest.raises(InvalidInputError, match="target|categor"):
        Prompt.from_strings("The capital of France is", targets, tiny_model("llama").tokenizer)


@pytest.mark.parametrize("family", family_params())
def test_run_prompts_sums_target_probabilities(family):
    model = tiny_model(family)
    prompts = [Prompt.from_strings(text, {"city": ["Paris", "Madrid"], "animal": "dog"}, model.tokenizer) for text in CAPITALS]
    with count_forwards(model) as forwards:
        result = run_prompts(model, prompts, batch_size=2)
    assert len(forwards) == 2 and list(result) == ["city", "animal"]
    expected = torch.cat([hf_forward(model, encode(model, CAPITALS[i : i + 2]))[0][:, -1].softmax(-1) for i in (0, 2)])
    for category in result:
        token_ids = list(prompts[0].target_tokens[category])
        assert torch.equal(result[category], expected[:, token_ids].sum(-1)), category
    per_layer = run_prompts(model, prompts, batch_size=2, get_probs_func=logit_lens)
    assert per_layer["city"].shape == (3, model.num_layers)
    # The lens projects (batch, layers, hidden) in one matmul, the model (batch, seq, hidden):
    # different GEMM shapes may round differently, so equal up to float32 rounding.
    assert torch.allclose(per_layer["city"][:, -1], result["city"], rtol=1e-5, atol=1e-8)


def test_bad_prompt_lists_fail_before_any_forward():
    model = tiny_model("llama")
    good = Prompt.from_strings("The cat sat", {"a": "dog"}, model.tokenizer)
    other = Prompt.from_strings("The cat sat", {"b": "dog"}, model.tokenizer)
    with count_forwards(model) as forwards:
        with pytest.raises(InvalidInputError, match="no prompts"):
            run_prompts(model, [])
        with pytest.raises(InvalidInputError, match="same categories"):
            run_prompts(model, [good, other])
        with pytest.raises(InvalidInputError, match="not a Prompt"):
            run_prompts(model, [good, "The cat sat"])
        with pytest.raises(InvalidInputError, match="batch_size"):
            run_prompts(model, [good], batch_size=0)
    assert forwards == []
