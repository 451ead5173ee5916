"""GPT-2 with ``reorder_and_upcast_attn=True``: eager attention takes a path the declaration does not hook."""

from __future__ import annotations

import pytest
import torch

import nnrosetta_conformance
from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

REORDERED = {"reorder_and_upcast_attn": True}


def test_the_suite_skips_what_the_adapter_refuses_under_eager_and_passes_the_rest():
    hf, tokenizer = build_tiny("gpt2", overrides=REORDERED)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    results = {r.name: r for r in nnrosetta_conformance.run(model).results}
    assert [name for name, r in results.items() if r.status == "failed"] == []
    assert results["heads"].status == "passed"  # sdpa never takes the reordered path
    for name in ("attention_probabilities", "attention_patterns"):
        assert results[name].status == "skipped"
        assert "reorder_and_upcast_attn=True" in results[name].message


def test_per_head_values_under_sdpa_and_a_clear_refusal_under_eager(tmp_path):
    hf, tokenizer = build_tiny("gpt2", overrides=REORDERED)
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), model.trace(ids):
        heads = model.heads_output[0].save()
        attention = model.attentions_output[0].save()
    projected = hf.transformer.h[0].attn.c_proj(heads.reshape(1, 4, -1))
    assert torch.equal(projected, attention)
    eager = StandardizedTransformer(str(tmp_path), attn_implementation="eager")
    with pytest.raises(CapabilityError, match="reorder_and_upcast_attn=True"):
        with torch.no_grad(), eager.trace(ids):
            eager.attention_patterns(0).save()
