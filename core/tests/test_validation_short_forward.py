"""The load-time forward runs one layer of each build and the last layer, and still records every layer."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnrosetta import RenamingError, StandardizedTransformer, validation
from nnrosetta.tiny import build_tiny


def _forward_counts(model) -> list[int]:
    """How often each layer's attention computed (a skipped layer's own hooks still fire, its children do not)."""
    counts = [0] * len(model.layers)
    for index in range(len(model.layers)):
        def count(*_args, index=index):
            counts[index] += 1
        model.layers[index]._module.self_attn.register_forward_hook(count)
    return counts


def _loaded(model_type: str, tmp_path, **overrides) -> StandardizedTransformer:
    built, tokenizer = build_tiny(model_type, overrides=overrides)
    built.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return StandardizedTransformer(str(tmp_path), check=False)


def test_alike_layers_are_one_build_even_when_a_setting_equals_a_layer_index(tmp_path):
    # 6 query heads over 2 kv heads: every attention has num_key_value_groups == 3, which is also
    # layer 3's index; layer_idx is the only setting that follows the index, so all six are one build.
    model = _loaded("llama", tmp_path, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                    hidden_size=48)
    assert validation.layer_builds(model) == [0] * 6


def test_the_short_forward_runs_the_first_and_last_layer_only(tmp_path):
    model = _loaded("llama", tmp_path, num_hidden_layers=6)
    counts = _forward_counts(model)
    projections = []
    model.lm_head._module.register_forward_hook(
        lambda _m, _i, output: projections.append((output.device.type, output.device.type == "meta" or not output.any()))
    )
    validation.run_checks(model)
    assert counts == [1, 0, 0, 0, 0, 1]
    # the vocabulary projection ran on meta tensors for its shape; zeros of it stood in for its output
    assert projections == [("meta", True), ("cpu", True)]
    with torch.no_grad(), model.trace(torch.tensor([[1, 2, 3]])):
        logits = model.logits.save()
    assert counts == [2, 1, 1, 1, 1, 2]
    with torch.no_grad():
        assert torch.equal(logits, model._module(torch.tensor([[1, 2, 3]])).logits)


def test_layers_built_differently_each_run(tmp_path):
    model = _loaded("gemma2", tmp_path, num_hidden_layers=6, layer_types=["sliding_attention", "full_attention"] * 3)
    assert validation.layer_builds(model) == [0, 1, 0, 1, 0, 1]
    counts = _forward_counts(model)
    validation.run_checks(model)
    assert counts == [1, 1, 0, 0, 0, 1]


def test_skipped_layers_get_the_container_their_build_returned(tmp_path):
    short = _loaded("bloom", tmp_path, n_layer=5)
    validation.run_checks(short)
    full = StandardizedTransformer(str(tmp_path), check=False)
    validation._forward_shapes(full, list(range(5)))
    assert short._layer_outputs == full._layer_outputs
    assert sorted(short._layer_outputs) == [0, 1, 2, 3, 4]
    assert short._layer_outputs[0][0] is tuple


def test_a_model_sharing_keys_and_values_runs_every_layer(tmp_path):
    model = _loaded("gemma4_text", tmp_path)
    assert model.adapter.config_keys.kv_shared is not None
    assert validation.layer_builds(model) == list(range(model.num_layers))


def test_a_wrong_size_is_still_caught_by_the_short_forward(tmp_path):
    folder = tmp_path / "llama"
    right = _loaded("llama", folder, num_hidden_layers=6).adapter
    wrong = dataclasses.replace(right, config_keys=dataclasses.replace(right.config_keys, hidden_size="intermediate_size"))
    model = StandardizedTransformer(str(folder), adapter=wrong, check=False)
    counts = _forward_counts(model)
    with pytest.raises(RenamingError, match=r"`attentions_output\[0\]` has shape"):
        validation.run_checks(model)
    assert counts == [1, 0, 0, 0, 0, 1]


def test_a_wrong_vocabulary_size_is_caught_with_the_projection_on_meta(tmp_path):
    folder = tmp_path / "llama"
    right = _loaded("llama", folder, num_hidden_layers=6).adapter
    wrong = dataclasses.replace(right, config_keys=dataclasses.replace(right.config_keys, vocab_size="intermediate_size"))
    model = StandardizedTransformer(str(folder), adapter=wrong, check=False)
    assert validation.projection_on_meta(model).shape == (1, validation.DUMMY_SEQUENCE_LENGTH, model.config.vocab_size)
    with pytest.raises(RenamingError, match=r"`logits` has shape"):
        validation.run_checks(model)


def test_a_model_with_no_layers_still_validates():
    built, tokenizer = build_tiny("llama", overrides={"num_hidden_layers": 0})
    model = StandardizedTransformer(built, tokenizer=tokenizer)
    assert validation.layer_builds(model) == []
