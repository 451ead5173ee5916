"""Llama-family attention choices the per-type head labels must get right.

The tiny configs cover each claimed type's defaults; these are the config
options that move the per-head projections to another `.source` label or skip
rotary embedding, each proven by the conformance checks and by exact values.
"""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny


def _run_attention_checks(model: StandardizedTransformer) -> None:
    for name in ("attention_probabilities", "heads", "attention_patterns"):
        CHECKS[name].function(model)


def test_stablelm_with_per_head_qk_layernorm():
    hf, tokenizer = build_tiny("stablelm", overrides={"qk_layernorm": True})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    _run_attention_checks(model)
    with torch.no_grad(), model.trace("The cat sat"):
        projected = model.layers[0].self_attn.q_proj.output.save()
        queries = model.queries[0].save()
    per_head = projected.view(1, -1, model.num_heads, model.head_dim).transpose(1, 2)
    normed = hf.model.layers[0].self_attn.q_layernorm(per_head)
    assert torch.equal(queries, normed)


def test_smollm3_layer_without_rotary_serves_unrotated_queries():
    hf, tokenizer = build_tiny("smollm3", overrides={"no_rope_layers": [1, 0]})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    _run_attention_checks(model)
    seen = {}
    with torch.no_grad(), model.trace("The cat sat"):
        for layer in range(2):
            seen[f"queries{layer}"] = model.queries[layer].save()
            seen[f"rotated{layer}"] = model.rotated_queries[layer].save()
    assert not torch.equal(seen["queries0"], seen["rotated0"])
    assert torch.equal(seen["queries1"], seen["rotated1"])
