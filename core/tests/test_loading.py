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
