"""ZAYA1: served with its learned affine residual, CCA heads and MoE routing with a skip expert.

The tiny model's residual scales and biases are random (tiny perturbs constant
parameters), so a dropped or misplaced bias changes the sum.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.checks.moe import expert_by_hand
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog", "Paris"]


def _batch(tokenizer) -> dict:
    """The left-padded batch with the positions a served trace passes (counted over real tokens)."""
    batch = dict(tokenizer(PROMPTS, return_tensors="pt", padding=True))
    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    return batch


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("zaya")
    return hf, tokenizer, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_zaya_logits_are_bit_identical_to_plain_huggingface(loaded):
    hf, tokenizer, model = loaded
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = hf(**batch).logits
        with model.trace(PROMPTS):
            served = model.logits.save()
    assert torch.equal(served, expected)


def test_zaya_layer_output_is_the_affine_sum_of_branch_and_skip(loaded):
    _, _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for index in range(model.num_layers):
            saved[index] = (model.layers_input[index].save(), model.attentions_output[index].save(),
                            model.mlps_output[index].save(), model.layers_output[index].save())
    for index, (stream, attention, mlp, output) in saved.items():
        layer = model.layers[index]._module
        after_attention = layer.post_attention_residual_scale
        after_mlp = layer.post_mlp_residual_scale
        with torch.no_grad():
            stream = ((attention + after_attention.hidden_states_bias) * after_attention.hidden_states_scale
                      + (stream + after_attention.residual_bias) * after_attention.residual_scale)
            stream = ((mlp + after_mlp.hidden_states_bias) * after_mlp.hidden_states_scale
                      + (stream + after_mlp.residual_bias) * after_mlp.residual_scale)
        assert float(after_mlp.residual_bias.detach().abs().max()) > 0  # the biases the declaration states are not zero
        assert torch.equal(stream, output)


def test_zaya_layer_zero_reads_the_affine_embedding(loaded):
    hf, _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["embedded"] = model.embed_tokens.output.save()
        saved["input"] = model.layers_input[0].save()
    scaled = hf.model
    with torch.no_grad():
        expected = ((saved["embedded"] + scaled.input_hidden_states_bias) * scaled.input_hidden_states_scale).float()
    assert float(scaled.input_hidden_states_bias.detach().abs().max()) > 0
    assert torch.equal(saved["input"], expected)


def test_zaya_attention_probabilities_are_huggingface_eager_attentions():
    hf, tokenizer = build_tiny("zaya")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = hf(**batch, output_attentions=True).attentions
        served = []
        with model.trace(PROMPTS):
            for index in range(model.num_layers):
                served.append(model.attention_probabilities[index].save())
    assert all(torch.equal(s, e) for s, e in zip(served, expected))


def _routed(model, layer: int, write=None) -> dict:
    """The block's input, its top-k as read, the router's own output and the block output (optionally rerouted)."""
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[layer].save()
        top = model.router_top_k[layer]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
        saved["logits"] = model.routers_output[layer].save()
        if write is not None:
            model.router_top_k[layer] = write(top)
        router = model.layers[layer].mlp.gate.output
        saved["handed_weights"], saved["handed_indices"] = router[1].save(), router[2].save()
        saved["output"] = model.mlps_output[layer].save()
    return saved


def test_zaya_routes_over_its_experts_and_a_skip_expert(loaded):
    _, _, model = loaded
    assert model.num_experts == 5 and model.experts_per_token == 1 and model.moe_layers == [0, 1]
    assert model.normalizes_top_k is False
    saved = _routed(model, 1)
    assert saved["logits"].shape[-1] == 5
    probabilities = saved["logits"].softmax(-1)
    assert torch.equal(saved["weights"], probabilities.gather(-1, saved["indices"]))


def test_forcing_every_token_to_one_expert_is_that_expert_by_hand(loaded):
    hf, _, model = loaded
    spec, experts = model.adapter.moe, hf.model.layers[0].mlp.experts
    for expert in range(4):
        saved = _routed(model, 0, lambda top: (torch.full_like(top.indices, expert), torch.ones_like(top.weights)))
        flat = saved["input"].reshape(-1, saved["input"].shape[-1])
        with torch.no_grad():
            by_hand = expert_by_hand(experts, spec.expert_by_hand, expert, flat)
        assert torch.equal(saved["output"].reshape(flat.shape), by_hand), expert


def test_forcing_every_token_to_the_skip_expert_adds_nothing(loaded):
    _, _, model = loaded
    saved = _routed(model, 0, lambda top: (torch.full_like(top.indices, 4), torch.ones_like(top.weights)))
    # Handed on as the router hands a skip choice: expert 0, weight 0.
    assert bool((saved["handed_indices"] == 0).all()) and bool((saved["handed_weights"] == 0).all())
    assert bool((saved["output"] == 0).all())


@pytest.fixture()
def skipping():
    """A tiny ZAYA whose balancing bias on the skip expert makes the router choose it for about half the tokens."""
    hf, tokenizer = build_tiny("zaya")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    logits = _routed(model, 0)["logits"].reshape(-1, 5)
    probabilities = logits.softmax(-1)
    margin = probabilities[:, :4].max(-1).values - probabilities[:, 4]
    with torch.no_grad():
        hf.model.layers[0].mlp.gate.balancing_biases[-1] = float(margin.median())
    return hf, model


def test_a_skip_choice_is_read_before_the_router_hands_it_on_as_expert_0(skipping):
    hf, model = skipping
    saved = _routed(model, 0)
    skipped = saved["indices"] == 4
    assert 0 < int(skipped.sum()) < skipped.numel()
    handed = saved["handed_indices"].reshape(saved["indices"].shape)
    assert bool((handed[skipped] == 0).all()) and bool((saved["handed_weights"].reshape(skipped.shape)[skipped] == 0).all())
    assert torch.equal(handed[~skipped], saved["indices"][~skipped])
    # The choice is what the declared routing (softmax plus balancing_biases) picks from the logits.
    biased = saved["logits"].softmax(-1) + hf.model.layers[0].mlp.gate.balancing_biases
    assert torch.equal(saved["indices"], biased.topk(1, dim=-1).indices)


def test_writing_back_a_top_k_with_skip_choices_changes_nothing(skipping):
    _, model = skipping
    baseline = _routed(model, 0)
    rewritten = _routed(model, 0, lambda top: (top.indices.clone(), top.weights.clone()))
    assert bool((baseline["indices"] == 4).any())
    assert torch.equal(baseline["output"], rewritten["output"])
    assert torch.equal(baseline["handed_indices"], rewritten["handed_indices"])


def test_ablating_the_skip_expert_leaves_the_routed_tokens_unchanged(skipping):
    _, model = skipping
    baseline = _routed(model, 0)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        model.ablate_experts(0, 0)
        saved["output"] = model.mlps_output[0].save()
    chose_zero = (baseline["indices"] == 0).any(-1)
    moved = (baseline["output"] != saved["output"]).any(-1)
    assert bool(chose_zero.any()) and not bool(moved[~chose_zero].any())
    assert bool((saved["output"][chose_zero] == 0).all())  # k=1, not renormalised: weight 0, nothing added


def test_zaya_queries_and_keys_are_the_cca_normed_ones_before_rotary(loaded):
    _, _, model = loaded
    with torch.no_grad(), model.trace(PROMPTS):
        queries = model.queries[0].save()
        keys = model.keys[0].save()
    temp = model.layers[0]._module.self_attn.qk_norm.temp.detach()
    root = model.head_dim ** 0.5
    assert queries.shape[1] == model.num_heads and keys.shape[1] == model.num_kv_heads
    assert torch.allclose(queries.norm(dim=-1), torch.full_like(queries[..., 0], root))
    assert torch.allclose(keys.norm(dim=-1), (root * temp.abs())[None, :, None].expand_as(keys[..., 0]))
