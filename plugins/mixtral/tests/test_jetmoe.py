"""JetMoE's MLP routing, read and written inside its router (`MoESpec.top_k_in_router`).

The router returns a sort-grouped layout built from the top-k it chooses; the top-k
is read where it is whole and written where the router's later code reads it. Forcing
every token to one expert must give that expert computed by hand from the
declaration (`ExpertByHand`) plus the block's bias; the attention mixture's router is
not served as routing.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import ShapeError, StandardizedTransformer
from nnrosetta_conformance.checks.moe import expert_by_hand
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog", "Paris"]


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("jetmoe")
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer)


def _block(model, layer: int, write=None) -> dict:
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[layer].save()
        if write is not None:
            model.router_top_k[layer] = write
        saved["output"] = model.mlps_output[layer].save()
    return saved


def test_jetmoe_top_k_is_the_top_k_of_its_logits_with_a_softmax_over_them(loaded):
    _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        top = model.router_top_k[1]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
        saved["logits"] = model.routers_output[1].save()
    assert model.num_experts == 4 and model.experts_per_token == 2 and model.moe_layers == [0, 1]
    assert saved["logits"].shape == saved["indices"].shape[:2] + (4,)
    values, indices = saved["logits"].topk(2, dim=-1)
    assert torch.equal(saved["indices"], indices)
    assert torch.equal(saved["weights"], values.softmax(dim=-1))


def test_forcing_every_token_to_one_expert_is_that_expert_by_hand_plus_the_bias(loaded):
    hf, model = loaded
    spec, block = model.adapter.moe, hf.model.layers[0].mlp
    for expert in range(model.num_experts):
        baseline = _block(model, 0)
        batch, seq = baseline["input"].shape[:2]
        indices = torch.full((batch, seq, 2), expert)
        indices[..., 1] = (expert + 1) % model.num_experts  # another expert, at weight 0
        weights = torch.zeros(batch, seq, 2)
        weights[..., 0] = 1.0
        forced = _block(model, 0, (indices, weights))
        flat = forced["input"].reshape(-1, forced["input"].shape[-1])
        with torch.no_grad():
            by_hand = expert_by_hand(block, spec.expert_by_hand, expert, flat) + block.bias
        assert torch.equal(forced["output"].reshape(flat.shape), by_hand), expert


def test_writing_the_top_k_read_back_changes_nothing(loaded):
    _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["before"] = model.mlps_output[0].save()
    with torch.no_grad(), model.trace(PROMPTS):
        top = model.router_top_k[0]
        model.router_top_k[0] = (top.indices.clone(), top.weights.clone())
        saved["after"] = model.mlps_output[0].save()
    assert torch.equal(saved["before"], saved["after"])


def test_swapping_the_two_slots_experts_changes_the_output(loaded):
    _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        top = model.router_top_k[0]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
        saved["before"] = model.mlps_output[0].save()
    swapped = (saved["indices"].flip(-1), saved["weights"])
    after = _block(model, 0, swapped)["output"]
    assert not torch.equal(saved["before"], after)
    assert torch.equal(after, _block(model, 0, swapped)["output"])


def test_a_top_k_naming_one_expert_twice_in_a_token_is_refused(loaded):
    _, model = loaded
    with pytest.raises(ShapeError, match=r"name one expert twice.*counts each chosen expert once"):
        with torch.no_grad(), model.trace(PROMPTS):
            top = model.router_top_k[0]
            model.router_top_k[0] = (torch.zeros_like(top.indices), top.weights)


def test_ablating_an_expert_moves_only_the_tokens_routed_to_it(loaded):
    _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["indices"] = model.router_top_k[0].indices.save()
        saved["before"] = model.mlps_output[0].save()
    expert = int(saved["indices"][0, -1, 0])
    with torch.no_grad(), model.trace(PROMPTS):
        model.ablate_experts(0, expert)
        saved["after"] = model.mlps_output[0].save()
    routed = (saved["indices"] == expert).any(-1)
    moved = (saved["before"] != saved["after"]).any(-1)
    assert bool(moved[0, -1]) and not bool(moved[~routed].any())


def test_the_attention_mixture_is_not_served_as_routing(loaded):
    _, model = loaded
    assert model.adapter.moe.router == "router"  # mlp.router, not self_attn.experts.router
    assert "attention mixture's routing" in model.adapter.notes
    assert "Not served" in model.adapter.notes


def test_reading_the_logits_before_the_top_k_is_a_read_order_error(loaded):
    from nnrosetta import ReadOrderError

    _, model = loaded
    with pytest.raises(ReadOrderError, match="router.*was read after the forward pass had already run past it"):
        with torch.no_grad(), model.trace(PROMPTS):
            model.routers_output[0].save()
            model.router_top_k[0].indices.save()


def _with_top_k(**changes):
    import dataclasses

    from nnrosetta import default_registry

    adapter = default_registry().resolve("jetmoe")
    inside = dataclasses.replace(adapter.moe.top_k_in_router, **changes)
    return dataclasses.replace(adapter, moe=dataclasses.replace(adapter.moe, top_k_in_router=inside))


def test_a_top_k_written_before_it_is_read_is_refused_at_load():
    from nnrosetta import Assigned, InvalidAdapterError

    hf, tokenizer = build_tiny("jetmoe")
    written = (("indices", Assigned("top_k_experts")), ("weights", Assigned("top_k_gates", occurrence=0)))
    adapter = _with_top_k(indices=Assigned("top_k_experts"), written=written)
    with pytest.raises(InvalidAdapterError, match=r"write points that run before its read points.*top_k_gates"):
        StandardizedTransformer(hf, tokenizer=tokenizer, adapter=adapter, check=False)


def test_a_top_k_point_the_router_lacks_is_refused_at_load_with_the_labels():
    from nnrosetta import Assigned, SourceLabelError

    hf, tokenizer = build_tiny("jetmoe")
    with pytest.raises(SourceLabelError, match=r"moe.top_k_in_router.weights.*Labels that exist: .*top_k_gates_0"):
        StandardizedTransformer(hf, tokenizer=tokenizer, adapter=_with_top_k(weights=Assigned("gates_sum")),
                                check=False)
