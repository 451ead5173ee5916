"""MoE family choices: each claimed type is faithful and routes as its family does.

Per type: bit-identical logits on a left-padded batch, standard accessor shapes and the
`moe_routing` conformance check (until the shared conformance suite runs it). Family
specifics: renormalisation after ablation (always for mixtral, per config for olmoe),
the shared expert of qwen2_moe, and dense layers mixed into a qwen2_moe model.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer, default_registry
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny
PROMPTS = ["The cat sat on the mat and the dog", "Paris"]


def _load(model_type: str, **overrides):
    hf, tokenizer = build_tiny(model_type, overrides=overrides or None)
    return hf, tokenizer, StandardizedTransformer(hf, tokenizer=tokenizer)


def _top_k_after_ablation(model_type: str) -> tuple:
    """Baseline (weights, indices), the slots that chose the ablated expert, the expert,
    the model and the block output with that expert ablated."""
    _, _, model = _load(model_type)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        top = model.router_top_k[0]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
    expert = int(saved["indices"][0, -1, 0])
    with torch.no_grad(), model.trace(PROMPTS):
        model.ablate_experts(0, expert)
        saved["ablated"] = model.mlps_output[0].save()
    hit = saved["indices"] == expert
    return saved["weights"], saved["indices"], hit, expert, model, saved["ablated"]


def _output_with(model, indices, weights) -> torch.Tensor:
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        model.router_top_k[0] = (indices, weights)
        saved["out"] = model.mlps_output[0].save()
    return saved["out"]


def test_mixtral_ablation_gives_the_remaining_expert_all_the_weight():
    weights, indices, hit, expert, model, ablated = _top_k_after_ablation("mixtral")
    # k=2 and renormalised: a token that lost one expert sends weight 1 to the other.
    expected = torch.where(hit, torch.zeros_like(weights), weights)
    expected = torch.where(hit.any(-1, keepdim=True) & ~hit, torch.ones_like(weights), expected)
    assert model.normalizes_top_k is True
    assert torch.equal(ablated, _output_with(model, indices, expected))


def test_olmoe_without_norm_topk_prob_keeps_the_remaining_weight():
    weights, indices, hit, expert, model, ablated = _top_k_after_ablation("olmoe")
    assert model.normalizes_top_k is False
    expected = torch.where(hit, torch.zeros_like(weights), weights)
    assert torch.equal(ablated, _output_with(model, indices, expected))
    assert not torch.equal(ablated, _output_with(model, indices, expected / expected.sum(-1, keepdim=True)))


def test_qwen2_moe_exposes_its_sigmoid_gated_shared_expert():
    hf, _, model = _load("qwen2_moe")
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[0].save()
        saved["shared"] = model.shared_experts_output[0].save()
        saved["out"] = model.mlps_output[0].save()
    with torch.no_grad(), model.trace(PROMPTS):
        model.shared_experts_output[0] = torch.zeros_like(saved["shared"])
        saved["routed_only"] = model.mlps_output[0].save()
    block = hf.model.layers[0].mlp
    with torch.no_grad():
        assert torch.equal(saved["shared"], block.shared_expert(saved["input"]))
        gated = torch.sigmoid(block.shared_expert_gate(saved["input"])) * saved["shared"]
    assert saved["shared"].shape == saved["input"].shape
    torch.testing.assert_close(saved["out"] - saved["routed_only"], gated, rtol=0, atol=1e-6)
    assert not torch.equal(saved["out"], saved["routed_only"])


def test_dense_layers_of_a_sparse_model_are_named_in_the_error():
    _, _, model = _load("qwen2_moe", mlp_only_layers=[1])
    assert model.moe_layers == [0]
    with pytest.raises(CapabilityError, match=r"layer 1 is dense .*MoE layers are \[0\]"):
        with model.trace(PROMPTS):
            model.routers_output[1].save()


def test_mixtral_has_no_shared_expert():
    _, _, model = _load("mixtral")
    with pytest.raises(CapabilityError, match="declares no shared expert"):
        with model.trace(PROMPTS):
            model.shared_experts_output[0].save()
