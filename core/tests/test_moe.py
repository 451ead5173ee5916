"""The MoE interface refuses bad input clearly: out-of-range experts, wrong shapes, dense models.

Models are picked by capability, not by family: the first installed type whose
adapter claims MoE, and the first that does not.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import (
    AccessorAssignmentError,
    Adapter,
    Assigned,
    Called,
    CapabilityError,
    InvalidAdapterError,
    LayerIndexError,
    MoESpec,
    ShapeError,
    StandardizedTransformer,
    default_registry,
)
from nnrosetta.capabilities import Capability
from nnrosetta.moe_declarations import TopKInRouter
from nnrosetta_conformance.tiny import build_tiny, claimed_tiny_types

PROMPTS = ["The capital of France is", "Hi"]


def _first_type(moe: bool) -> str:
    for model_type in claimed_tiny_types():
        if (Capability.MOE in default_registry().resolve(model_type).capabilities) == moe:
            return model_type
    pytest.skip(f"no installed adapter {'claims' if moe else 'lacks'} the moe capability")


@pytest.fixture(scope="module")
def moe_model() -> StandardizedTransformer:
    model, tokenizer = build_tiny(_first_type(moe=True))
    return StandardizedTransformer(model, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def dense_model() -> StandardizedTransformer:
    model, tokenizer = build_tiny(_first_type(moe=False))
    return StandardizedTransformer(model, tokenizer=tokenizer)


def test_expert_index_out_of_range_in_ablation_names_num_experts(moe_model):
    experts = moe_model.num_experts
    with pytest.raises(LayerIndexError, match=f"expert index {experts} is out of range.*num_experts={experts}"):
        with moe_model.trace(PROMPTS):
            moe_model.ablate_experts(0, [experts])


def test_expert_index_out_of_range_in_written_top_k_is_refused(moe_model):
    experts = moe_model.num_experts
    with pytest.raises(LayerIndexError, match=f"out of range.*num_experts={experts}; use 0..{experts - 1}"):
        with moe_model.trace(PROMPTS):
            top = moe_model.router_top_k[0]
            moe_model.router_top_k[0] = (torch.full_like(top.indices, experts), top.weights)


def test_router_top_k_written_with_the_wrong_shape_gives_both_shapes(moe_model):
    k = moe_model.experts_per_token
    with pytest.raises(ShapeError, match=rf"weights must have shape \(2, \d+, {k}\).*got \(2, \d+, {k + 1}\)"):
        with moe_model.trace(PROMPTS):
            top = moe_model.router_top_k[0]
            wider = torch.cat([top.weights, top.weights[..., :1]], dim=-1)
            moe_model.router_top_k[0] = (top.indices, wider)


def test_router_top_k_written_with_one_tensor_asks_for_the_pair(moe_model):
    with pytest.raises(ShapeError, match=r"must be set to \(indices, weights\)"):
        with moe_model.trace(PROMPTS):
            moe_model.router_top_k[0] = moe_model.router_top_k[0].indices


def test_router_top_k_indices_must_be_integers(moe_model):
    with pytest.raises(ShapeError, match="indices must be an integer tensor"):
        with moe_model.trace(PROMPTS):
            top = moe_model.router_top_k[0]
            moe_model.router_top_k[0] = (top.indices.float(), top.weights)


def test_router_logits_are_read_only_and_point_to_top_k(moe_model):
    with pytest.raises(AccessorAssignmentError, match=r"router_top_k\[0\]"):
        with moe_model.trace(PROMPTS):
            logits = moe_model.routers_output[0]
            moe_model.routers_output[0] = logits


def test_written_top_k_changes_the_block_output(moe_model):
    outputs = {}
    with torch.no_grad(), moe_model.trace(PROMPTS):
        outputs["before"] = moe_model.mlps_output[0].save()
    with torch.no_grad(), moe_model.trace(PROMPTS):
        top = moe_model.router_top_k[0]
        moe_model.router_top_k[0] = (top.indices, top.weights * 2)
        outputs["doubled"] = moe_model.mlps_output[0].save()
    assert not torch.equal(outputs["before"], outputs["doubled"])


@pytest.mark.parametrize(
    "member",
    ["num_experts", "experts_per_token", "routers_output", "router_top_k", "shared_experts_output", "moe_layers"],
)
def test_moe_accessor_on_a_dense_model_names_model_type_and_adapter(dense_model, member):
    model_type = dense_model.config.model_type
    adapter = dense_model.adapter.name
    assert dense_model.is_moe is False
    with pytest.raises(CapabilityError, match=rf"model type '{model_type}' is served by adapter '{adapter}'"):
        getattr(dense_model, member)


def test_ablation_on_a_dense_model_names_model_type_and_adapter(dense_model):
    with pytest.raises(CapabilityError, match=f"adapter '{dense_model.adapter.name}'.*no `moe` spec"):
        dense_model.ablate_experts(0, [0])


def test_malformed_moe_spec_is_refused_at_registration():
    adapter = Adapter(name="bad-moe", model_types=("x",), moe=MoESpec(router_returns=("logits", "indices")))
    with pytest.raises(InvalidAdapterError, match="field `moe` router_returns"):
        adapter.validate("test-plugin")


def test_moe_spec_claims_the_moe_capability():
    assert Capability.MOE in Adapter(name="m", model_types=("x",), moe=MoESpec()).capabilities
    assert Capability.MOE not in Adapter(name="d", model_types=("x",)).capabilities


@pytest.mark.parametrize(
    "spec, message",
    [
        (MoESpec(router_returns=("other", "logits")), "router_returns holds no top-k"),
        (MoESpec(router_returns=("other", "logits"),
                 top_k_in_router=TopKInRouter(indices=Called("topk"), weights=Assigned("w"))),
         "router_returns holds no top-k to read or write.*top_k_in_router with its written points"),
        (MoESpec(top_k_in_router=TopKInRouter(indices=Called("topk"), weights=Assigned("w"),
                                              written=(("indices", Called("sort")),))),
         "names both indices and weights"),
        (MoESpec(top_k_in_router=TopKInRouter(indices=Called("topk"), weights=Assigned("w"),
                                              written=(("scores", Called("sort")),))),
         "each entry is"),
        (MoESpec(router_returns=("logits",), top_k_at_experts=(1, 2),
                 top_k_in_router=TopKInRouter(indices=Called("topk"), weights=Assigned("w"))),
         "not both"),
        (MoESpec(zero_experts_output="zero"), "needs zero_experts_key"),
        (MoESpec(zero_experts_key="n_zero", zero_experts_output="identity"), "zero_experts_output must be one of"),
        (MoESpec(recorded_logits=(2, 2)), "recorded_logits must be"),
        (MoESpec(zero_experts_passed_as=0), "zero_experts_passed_as says how.*needs zero_experts_key"),
        (MoESpec(zero_experts_key="n_zero", zero_experts_passed_as=-1), "zero_experts_passed_as must be"),
        (MoESpec(experts="", router_returns=("logits",), top_k_at_experts=(1, 2)), "experts must name a child"),
    ],
)
def test_malformed_routing_forms_are_refused_with_what_to_declare(spec, message):
    adapter = Adapter(name="bad-moe", model_types=("x",), moe=spec)
    with pytest.raises(InvalidAdapterError, match=message):
        adapter.validate("test-plugin")


def test_the_other_form_with_a_top_k_inside_the_router_is_well_formed():
    written = (("indices", Called("sort")), ("weights", Assigned("w", occurrence=1)))
    spec = MoESpec(router_returns=("other", "other", "logits"), experts="",
                   top_k_in_router=TopKInRouter(indices=Called("topk"), weights=Assigned("w"), written=written))
    assert spec.problems() == [] and spec.position("logits") == 2 and not spec.bare_logits
