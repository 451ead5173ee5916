"""Loading: no deprecation warnings, keyword arguments reach HuggingFace, lazy loading by path."""

from __future__ import annotations

import warnings

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import save_tiny


def test_loading_by_path_prints_no_deprecation_warning(tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StandardizedTransformer(str(folder))
    deprecations = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert deprecations == [], [str(w.message) for w in deprecations]


def test_keyword_arguments_reach_huggingface(tmp_path):
    folder = save_tiny("llama", tmp_path / "llama")
    model = StandardizedTransformer(str(folder), dtype=torch.float64, attn_implementation="eager")
    assert next(model._module.parameters()).dtype == torch.float64
    assert model.config._attn_implementation == "eager"
    with torch.no_grad(), model.trace("The cat"):
        hidden = model.layers_output[0].save()
    assert hidden.dtype == torch.float64


def test_a_folder_loads_the_same_model_with_or_without_config_overrides(tmp_path):
    """With plain load keywords the config already read is handed on; an override is still applied.

    ``rms_norm_eps`` is no from_pretrained argument but a config attribute: it must reach the
    config (from_pretrained applies it only while reading the config itself), and a value
    this far from the saved one changes the logits.
    """
    from transformers import AutoModelForCausalLM

    folder = save_tiny("llama", tmp_path / "llama")
    ids = torch.tensor([[5, 6, 7, 8]])
    for overrides in ({}, {"rms_norm_eps": 0.5}):
        model = StandardizedTransformer(str(folder), **overrides)
        assert all(getattr(model.config, key) == value for key, value in overrides.items())
        with torch.no_grad(), model.trace(ids):
            logits = model.logits.save()
        with torch.no_grad():
            plain = AutoModelForCausalLM.from_pretrained(folder, **overrides).eval()(ids).logits
        assert torch.equal(logits, plain)
    with torch.no_grad():
        saved_eps = AutoModelForCausalLM.from_pretrained(folder).eval()(ids).logits
    assert not torch.equal(plain, saved_eps)
