"""DBRX-specific choices: per-head values after the clip_qkv clamp, and the top-k read at the experts call."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
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


def test_top_k_is_read_at_the_experts_call_from_the_bare_router_logits():
    """The router returns logits alone; the p-normed top-k route_tokens_to_experts computes is served.

    With moe_normalize_expert_weights=2 the weights have unit 2-norm, not sum 1, so the
    adapter must not claim renormalisation (ablation then leaves the other weight as is).
    """
    hf, tokenizer = build_tiny("dbrx", overrides={"ffn_config": {**TINY["ffn_config"], "moe_normalize_expert_weights": 2.0}})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[0].save()
        saved["logits"] = model.routers_output[0].save()
        top = model.router_top_k[0]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
    block = hf.transformer.blocks[0].ffn
    with torch.no_grad():
        logits = block.router.layer(saved["input"])
        probs = logits.softmax(-1)
        values, indices = probs.topk(2, dim=-1)
    assert torch.equal(saved["logits"], logits)
    assert torch.equal(saved["indices"], indices)
    torch.testing.assert_close(saved["weights"], values / values.norm(p=2, dim=-1, keepdim=True), rtol=0, atol=1e-7)
    assert model.normalizes_top_k is False
    expert = int(saved["indices"][0, -1, 0])
    with torch.no_grad(), model.trace(PROMPTS):
        model.ablate_experts(0, expert)
        ablated = model.router_top_k[0]
        saved["ablated"] = ablated.weights.save()
    hit = saved["indices"] == expert
    assert torch.equal(saved["ablated"], saved["weights"].masked_fill(hit, 0))


def test_a_stale_top_level_num_key_value_heads_does_not_change_the_kv_heads(tmp_path):
    """The attention reads attn_config.kv_n_heads; a saved top-level num_key_value_heads of 1 is not it."""
    from nnrosetta.tiny import save_tiny
    from nnrosetta_conformance import runner

    folder = save_tiny("dbrx", tmp_path / "m", overrides={"num_key_value_heads": 1})
    model = StandardizedTransformer(str(folder))
    assert model.config.num_key_value_heads == 1
    assert model.num_kv_heads == model.config.attn_config.kv_n_heads != 1
    report = runner.run(str(folder), ["heads", "sizes"])
    assert [(r.name, r.message) for r in report.failures] == []
