"""Patched runs that skip the layers before their first patch give the very numbers of running them all.

A patch at layer L changes nothing before L, so `patched_last_logits` replaces
layers 0..L-1 of such a pass by the unpatched run's layer L-1 output. The effect
matrices must be bit-identical to the sweep that runs every layer, and the skip
must really happen (fewer layer calls), on families whose layers return a tensor
(llama) and a tuple (gpt2).
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Iterator

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.interventions import activation_patching, logit_difference
from nnrosetta.interventions import patched_runs
from nnrosetta.interventions.patched_runs import Patch, patched_last_logits
from nnrosetta_conformance.tiny import build_tiny

# Pairs that tokenize to the same lengths with the tiny tokenizer (7 tokens each).
CLEAN = ["The capital of Spain is", "The cat sat on the"]
CORRUPTED = ["The capital of England is", "The dog sat on the"]
LAYERS = 6


def _model(model_type: str) -> StandardizedTransformer:
    overrides = {"n_layer": LAYERS} if model_type == "gpt2" else {"num_hidden_layers": LAYERS}
    model, tokenizer = build_tiny(model_type, overrides=overrides)
    return StandardizedTransformer(model, tokenizer=tokenizer)


@contextlib.contextmanager
def _every_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """activation_patching with skipping turned off: the naive sweep."""
    module = importlib.import_module("nnrosetta.interventions.activation_patching")

    def naive(*args, **kwargs):
        return patched_last_logits(*args, **kwargs, reuse_unpatched=False)

    with monkeypatch.context() as patch:
        patch.setattr(module, "patched_last_logits", naive)
        yield


@contextlib.contextmanager
def _counting_layer_calls(model: StandardizedTransformer) -> Iterator[list[int]]:
    """Layers that really ran: a skipped layer's own hooks still fire, its MLP does not run."""
    calls: list[int] = []
    handles = [
        model.layers[i]._module.mlp.register_forward_pre_hook(lambda *_args, i=i: calls.append(i))
        for i in range(model.num_layers)
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("component", ["layers", "attentions", "mlps"])
def test_a_sweep_that_skips_unpatched_layers_is_bit_identical_to_running_them(family, component, monkeypatch):
    model = _model(family)
    metric = logit_difference([5, 9], [7, 11])
    sweep = dict(component=component, metric=metric, batch_size=2)
    with _counting_layer_calls(model) as skipping_calls:
        skipping = activation_patching(model, CLEAN, CORRUPTED, **sweep)
    with _every_layer(monkeypatch), _counting_layer_calls(model) as naive_calls:
        naive = activation_patching(model, CLEAN, CORRUPTED, **sweep)
    assert skipping.shape == naive.shape == (LAYERS, 7)
    assert torch.equal(skipping, naive)
    # 1 clean + 22 patched passes (43 runs, 2 per pass) of 6 layers, without skipping.
    assert len(naive_calls) == 6 * (1 + 22)
    # Pass k (of 2 runs: 2k-1, 2k) starts at layer (2k - 1) // 7; the last pass (1 run) and the
    # first run every layer; reading the unpatched outputs takes 6 more and verifying a skip 5.
    starts = [0] + [(2 * k - 1) // 7 for k in range(1, 21)]
    assert len(skipping_calls) == 6 + sum(6 - start for start in starts) + 6 + 6 + 5 == 100


def test_a_family_whose_skip_is_not_exact_runs_every_layer(monkeypatch):
    """When the verifying pass disagrees, no pass skips: the numbers stay those of the full sweep."""
    model = _model("llama")
    metric = logit_difference([5, 9], [7, 11])
    monkeypatch.setattr(patched_runs.UnpatchedPrefixes, "_read_and_verify", lambda self, start: False)
    with _counting_layer_calls(model) as calls:
        refused = activation_patching(model, CLEAN, CORRUPTED, metric=metric, batch_size=2)
    with _every_layer(monkeypatch):
        naive = activation_patching(model, CLEAN, CORRUPTED, metric=metric, batch_size=2)
    assert torch.equal(refused, naive)
    assert len(calls) == 6 * (1 + 22)


def test_patches_at_the_input_of_a_layer_skip_only_the_layers_before_it():
    model = _model("gpt2")
    encoding = model.tokenizer(CORRUPTED, return_tensors="pt", padding=True)
    encoding = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
    rows = encoding["input_ids"].shape[0]
    generator = torch.Generator().manual_seed(0)
    runs = [[]] + [
        [Patch(layer, torch.full((rows,), -1), torch.randn(rows, model.hidden_size, generator=generator))]
        for layer in sorted([3, 4, 5] * 4)
    ]
    kwargs = dict(batch_size=3, where="input")
    skipping = patched_last_logits(model, encoding, "layers", runs, **kwargs)
    naive = patched_last_logits(model, encoding, "layers", runs, **kwargs, reuse_unpatched=False)
    assert skipping.shape == (len(runs), rows, model.vocab_size)
    assert torch.equal(skipping, naive)
    assert not torch.equal(skipping[1], skipping[0])  # the patches do change the logits
