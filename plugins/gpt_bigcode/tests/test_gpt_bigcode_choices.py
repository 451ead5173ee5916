"""GPT-BigCode family choices: multi-query attention, and the checkpoints the adapter refuses.

- Multi-query: one key head and one value head serve every query head, so
  ``num_kv_heads`` is 1 and ``keys[i]`` / ``values[i]`` are the single head-wide
  blocks after the queries in ``c_attn``'s output; the naive multi-head split
  (``num_kv_heads = num_heads``, three hidden-wide blocks) does not fit ``c_attn``.
- ``add_cross_attention=True`` is refused at load; ``multi_query=False`` is served,
  with per-head values refused (its ``c_attn`` is laid out per head).
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept", "Paris is"]


def test_one_key_and_value_head_sit_after_the_queries_in_c_attn():
    hf, tokenizer = build_tiny("gpt_bigcode")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    heads, head_dim, hidden = model.num_heads, model.head_dim, model.hidden_size
    assert hf.config.multi_query and model.num_kv_heads == 1 < heads
    assert hf.transformer.h[0].attn.c_attn.out_features == hidden + 2 * head_dim != 3 * hidden
    for layer in range(model.num_layers):
        model.layers[layer].self_attn.source  # instrument every attention forward before tracing
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = {
                "fused": model.layers[layer].self_attn.c_attn.output.save(),
                "queries": model.queries[layer].save(),
                "keys": model.keys[layer].save(),
                "values": model.values[layer].save(),
                "rotated_keys": model.rotated_keys[layer].save(),
            }
    for layer, seen in saved.items():
        fused = seen["fused"]
        batch, seq = fused.shape[:2]
        assert seen["keys"].shape == seen["values"].shape == (batch, 1, seq, head_dim)
        queries = fused[..., :hidden].view(batch, seq, heads, head_dim).transpose(1, 2)
        assert torch.equal(seen["queries"], queries)
        assert torch.equal(seen["keys"], fused[..., hidden : hidden + head_dim].unsqueeze(1))
        assert torch.equal(seen["values"], fused[..., hidden + head_dim :].unsqueeze(1))
        # No rotary: the attention function receives the one key head as it is.
        assert torch.equal(seen["rotated_keys"], seen["keys"])


def test_cross_attention_checkpoints_are_refused_at_load_naming_the_option():
    hf, tokenizer = build_tiny("gpt_bigcode", overrides={"add_cross_attention": True, "multi_query": False})
    with pytest.raises(UnsupportedArchitectureError, match="add_cross_attention=True.*add_cross_attention=False"):
        StandardizedTransformer(hf, tokenizer=tokenizer)


def test_multi_head_checkpoints_are_served_without_per_head_values():
    hf, tokenizer = build_tiny("gpt_bigcode", overrides={"multi_query": False})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.num_kv_heads == model.num_heads
    ids = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad(), model.trace(ids):
        logits = model.logits.save()
    with torch.no_grad():
        position_ids = (ids["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        assert torch.equal(logits, hf(**ids, position_ids=position_ids).logits)
    with pytest.raises(CapabilityError, match="multi_query=False"):
        with model.trace(PROMPTS):
            model.keys[0].save()


def test_a_stale_num_key_value_heads_in_the_saved_config_does_not_change_the_kv_heads(tmp_path):
    """The attention reads multi_query; a saved num_key_value_heads of 2 is not what it runs."""
    from nnrosetta.tiny import save_tiny
    from nnrosetta_conformance import runner

    folder = save_tiny("gpt_bigcode", tmp_path / "m", overrides={"num_key_value_heads": 2})
    model = StandardizedTransformer(str(folder))
    assert model.config.num_key_value_heads == 2 and model.num_kv_heads == 1
    report = runner.run(str(folder), ["heads", "sizes"])
    assert [(r.name, r.message) for r in report.failures] == []
