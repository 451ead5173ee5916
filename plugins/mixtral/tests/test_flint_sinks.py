"""Flint's per-head attention sinks (`AttentionSpec.sinks`) in the recomputed patterns.

`attention_patterns(i)` recomputes the softmax from the rotated queries and keys with
one more column per row holding the head's sink logit, and drops it, as the family's
eager attention does; without the sink the same recomputation sums to 1 and differs.
"""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.attention import sink_logits
from nnrosetta.heads import recompute_probabilities
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Hi"]


def test_flint_patterns_include_the_sink_column_and_drop_it():
    hf, tokenizer = build_tiny("flint", attn_implementation="eager")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    seen = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            args, kwargs = model.layers[layer].self_attn.source.attention_interface_1.inputs
            seen[layer] = {
                "query": model.rotated_queries[layer].save(),
                "key": model.rotated_keys[layer].save(),
                "mask": args[4].save(),
                "scaling": kwargs["scaling"],
                "pattern": model.attention_patterns(layer).save(),
                "probabilities": model.attention_probabilities[layer].save(),
            }
    for layer, values in seen.items():
        sinks = sink_logits(model, layer)
        assert sinks is hf.model.layers[layer].self_attn.sinks
        by_hand = recompute_probabilities(values["query"], values["key"], values["mask"], values["scaling"], None, sinks)
        assert torch.equal(values["pattern"], by_hand)
        tolerance = 16 * torch.finfo(values["probabilities"].dtype).eps
        assert torch.allclose(values["pattern"], values["probabilities"], atol=tolerance, rtol=0)
        without = recompute_probabilities(values["query"], values["key"], values["mask"], values["scaling"], None)
        sums = without.sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=tolerance, rtol=0)
        assert not torch.allclose(without, values["probabilities"], atol=1e-3, rtol=0)
    for name in ("attention_probabilities", "heads"):
        CHECKS[name].function(model)
