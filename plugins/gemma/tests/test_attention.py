"""Gemma attention choices: the probabilities served are the ones each layer uses.

Gemma 2/3 alternate sliding-window and global layers and Gemma 2 soft-caps its
attention logits; the tiny configs use a window of 4 tokens, so on a longer
prompt a sliding layer must put exactly zero weight beyond the window while the
global layer does not, and a strong soft-cap must visibly shape the probabilities.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.heads import recompute_probabilities
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept by the door"
WINDOW = 4


def _probabilities(model_type: str, overrides=None):
    hf, tokenizer = build_tiny(model_type, overrides=overrides)
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    seen = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            seen[f"q{layer}"] = model.rotated_queries[layer].save()
            seen[f"k{layer}"] = model.rotated_keys[layer].save()
            seen[layer] = model.attention_probabilities[layer].save()
    with torch.no_grad():
        reference = hf(ids, output_attentions=True).attentions
    return model, ids, seen, reference


@pytest.mark.parametrize("model_type", ["gemma2", "gemma3_text"])
def test_sliding_and_global_layers_serve_the_probabilities_they_use(model_type):
    model, ids, seen, reference = _probabilities(model_type)
    assert model.config.layer_types == ["sliding_attention", "full_attention"]
    length = ids.shape[1]
    assert length > WINDOW + 2
    query, key = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    outside_window = (key <= query - WINDOW) & (key <= query)
    sliding, full = seen[0], seen[1]
    assert torch.equal(sliding, reference[0]) and torch.equal(full, reference[1])
    assert bool((sliding[..., outside_window] == 0).all())
    assert bool((full[..., outside_window] > 0).all())
    assert torch.equal((sliding[0, 0] > 0).sum(-1), torch.clamp(torch.arange(length) + 1, max=WINDOW))


def test_soft_capped_attention_logits_shape_the_probabilities():
    model, ids, seen, reference = _probabilities("gemma2", overrides={"attn_logit_softcapping": 0.01})
    for layer in range(model.num_layers):
        assert torch.equal(seen[layer], reference[layer])
    layer = 1
    scaling = model.config.query_pre_attn_scalar**-0.5
    capped = recompute_probabilities(seen[f"q{layer}"], seen[f"k{layer}"], None, scaling, 0.01)
    uncapped = recompute_probabilities(seen[f"q{layer}"], seen[f"k{layer}"], None, scaling, None)
    assert torch.allclose(capped, seen[layer], atol=1e-6, rtol=0)
    assert (uncapped - seen[layer]).abs().max() > 1e-4  # far above float32 rounding (~1e-7)
