"""DBRX-specific choices: per-head values after the clip_qkv clamp, and why MoE routing is not declared."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny
from nnrosetta_dbrx import TINY

PROMPTS = ["The capital of France is", "Hi"]
#: Small enough that the clamp changes most of the tiny model's projections.
BITING_CLIP = 0.05


def test_queries_keys_values_are_read_after_the_clip_qkv_clamp():
    """A fused split of Wqkv's output (the naive GPT-2-style declaration) would miss the clamp.

    With the released clip_qkv=8 a random tiny model is never clamped, so the generic
    checks cannot tell the two apart; here the clamp bites.
    """
    overrides = {"attn_config": {**TINY["attn_config"], "clip_qkv": BITING_CLIP}}
    hf, tokenizer = build_tiny("dbrx", overrides=overrides)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.attentions_input[0].save()
        saved["queries"] = model.queries[0].save()
        saved["keys"] = model.keys[0].save()
        saved["values"] = model.values[0].save()
    attention = hf.transformer.blocks[0].norm_attn_norm.attn
    head_dim, kv_heads = model.head_dim, model.num_kv_heads
    with torch.no_grad():
        raw = attention.Wqkv(saved["input"])
    clamped = raw.clamp(-BITING_CLIP, BITING_CLIP)
    widths = [model.num_heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]

    def per_head(fused: torch.Tensor) -> list[torch.Tensor]:
        return [part.unflatten(-1, (-1, head_dim)).transpose(1, 2) for part in fused.split(widths, dim=-1)]

    assert not torch.equal(raw, clamped)
    for name, value in zip(("queries", "keys", "values"), per_head(clamped)):
        assert torch.equal(saved[name], value), name
    assert not torch.equal(saved["queries"], per_head(raw)[0])
    assert saved["keys"].shape[1] == kv_heads == 2


def test_router_returns_bare_logits_so_routing_is_not_declared():
    """DBRX's router module returns (tokens, experts) logits alone; the top-k is computed by the block.

    MoESpec reads (logits, weights, indices) from the router's output tuple: declared on
    DBRX, `routers_output[i]` would be the first token's logits row. The day the router
    returns the tuple, this test fails and the adapter can declare `moe`.
    """
    hf, tokenizer = build_tiny("dbrx")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[0].save()
        saved["router"] = model.layers[0].mlp.router.output.save()
        saved["output"] = model.mlps_output[0].save()
    block = hf.transformer.blocks[0].ffn
    tokens = saved["input"].shape[0] * saved["input"].shape[1]
    with torch.no_grad():
        logits = block.router.layer(saved["input"].reshape(tokens, -1))
        weights, indices = block.route_tokens_to_experts(logits)
        routed = block.experts(saved["input"], indices, weights)
    assert isinstance(saved["router"], torch.Tensor)
    assert saved["router"].shape == (tokens, hf.config.ffn_config.moe_num_experts)
    assert torch.equal(saved["router"], logits)
    assert torch.equal(saved["output"], routed)
    assert model.is_moe is False
    with pytest.raises(CapabilityError, match="declares no `moe` spec"):
        model.routers_output
