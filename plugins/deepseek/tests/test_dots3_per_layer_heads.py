"""dots3 with the released design: its sliding layers have half the heads of its indexed layers."""

from __future__ import annotations

import pytest

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.runner import run
from nnrosetta_conformance.tiny import build_tiny


def test_attention_probabilities_take_each_layers_head_count(tmp_path):
    built, tokenizer = build_tiny("dots3_note_text", overrides={"swa_num_attention_heads": 2, "swa_num_key_value_heads": 2})
    built.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = StandardizedTransformer(str(tmp_path))
    assert [model.layer_sizes(layer)["num_heads"] for layer in range(model.num_layers)] == [4, 2]
    with pytest.raises(CapabilityError, match=r"`num_heads` differs between the layers.*\{0: 4, 1: 2\}"):
        model.num_heads
    report = run(model, ["attention_probabilities", "sizes"])
    assert {r.name: r.status for r in report.results} == {"attention_probabilities": "passed", "sizes": "passed"}, [
        r.message for r in report.results
    ]
