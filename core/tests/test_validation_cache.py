"""The load-time validation's passes kept on disk: reused only for the very same declaration and model."""

from __future__ import annotations

import dataclasses

import pytest

from nnrosetta import ConfigKeys, RenamingError, StandardizedTransformer, validation_cache
from nnrosetta.validation import _validation_key, clear_validation_cache
from nnrosetta_conformance.tiny import save_tiny

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNROSETTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(validation_cache.VARIABLE, raising=False)
    clear_validation_cache()
    yield tmp_path / "cache" / "validated"
    clear_validation_cache()


def _kept(folder) -> list:
    return sorted(folder.glob("*.json")) if folder.exists() else []


def test_a_pass_is_kept_and_a_later_load_restores_what_the_forward_recorded(cache, tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    first = StandardizedTransformer(str(folder))
    assert len(_kept(cache)) == 1
    clear_validation_cache()  # as in a new process: only the disk remembers
    again = StandardizedTransformer(str(folder))
    assert len(_kept(cache)) == 1
    assert again._layer_outputs == first._layer_outputs


def test_a_layer_whose_other_outputs_carry_state_keeps_that_mark_through_the_disk(cache, tmp_path):
    """skip_layers runs such a layer and replaces only its hidden output, so the mark must survive a reload."""
    folder = save_tiny("xlstm", tmp_path / "xlstm")
    first = StandardizedTransformer(str(folder))
    assert any(carries_state for _, _, carries_state in first._layer_outputs.values())
    clear_validation_cache()
    again = StandardizedTransformer(str(folder))
    assert again._layer_outputs == first._layer_outputs


def test_a_wrong_declaration_is_still_caught_after_a_pass_of_the_right_one(cache, tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    right = StandardizedTransformer(str(folder)).adapter
    clear_validation_cache()
    wrong = dataclasses.replace(right, config_keys=dataclasses.replace(right.config_keys, hidden_size="intermediate_size"))
    with pytest.raises(RenamingError, match=r"`attentions_output\[0\]` has shape"):
        StandardizedTransformer(str(folder), adapter=wrong)
    assert len(_kept(cache)) == 1  # failures are not kept


def test_the_digest_follows_the_declaration_its_callables_and_the_config(tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    model = StandardizedTransformer(str(folder), check=False)
    base = validation_cache.digest(model, _validation_key(model))
    assert base == validation_cache.digest(model, _validation_key(model))
    adapter = model.adapter
    for changed in (
        dataclasses.replace(adapter, rename={**adapter.rename, "model.norm": "norm"}),
        dataclasses.replace(adapter, config_keys=ConfigKeys(hidden_size=lambda config: config.hidden_size)),
        dataclasses.replace(adapter, config_keys=ConfigKeys(hidden_size=lambda config: config.hidden_size + 0)),
    ):
        object.__setattr__(model, "adapter", changed)
        assert validation_cache.digest(model, _validation_key(model)) != base
    object.__setattr__(model, "adapter", adapter)
    model.config.rms_norm_eps = model.config.rms_norm_eps * 2
    assert validation_cache.digest(model, _validation_key(model)) != base


def test_a_declaration_with_no_exact_form_is_not_kept(cache, tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    model = StandardizedTransformer(str(folder), check=False)
    opaque = object()
    odd = dataclasses.replace(model.adapter, config_keys=ConfigKeys(hidden_size=lambda config: opaque and 64))
    object.__setattr__(model, "adapter", odd)
    assert validation_cache.digest(model, _validation_key(model)) is None


def test_models_passed_as_objects_and_a_switched_off_cache_keep_nothing(cache, tmp_path, monkeypatch):
    folder = save_tiny("llama", tmp_path / "llama")
    StandardizedTransformer("tiny:llama")
    monkeypatch.setenv(validation_cache.VARIABLE, "0")
    StandardizedTransformer(str(folder))
    assert _kept(cache) == []
