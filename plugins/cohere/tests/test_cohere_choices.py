"""Cohere family choices: scaled logits, parallel layers, sliding layers without rotary on full ones.

Each test can fail on the naive declaration: the plain ``lm_head(ln_final(h))``
projection is shown to differ from the logits by exactly ``logit_scale``; an edit of
the attention output is shown not to reach the same layer's MLP (the suite's residual
sum holds for sequential and parallel layers alike); queries are shown to be
unrotated exactly on the full-attention layers that apply no rotary, and sliding
layers to give no weight beyond their window.
"""

from __future__ import annotations

import math

import pytest
import torch

import nnrosetta_conformance
from nnrosetta import StandardizedTransformer
from nnrosetta.interventions import logit_lens
from nnrosetta_cohere import MODEL_TYPES
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris"]
SLIDING_TYPES = ("cohere2", "cohere2_moe")


@pytest.fixture(scope="module", params=MODEL_TYPES)
def loaded(request):
    hf, tokenizer = build_tiny(request.param)
    return request.param, hf, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_project_on_vocab_and_the_logit_lens_include_the_logit_scale(loaded):
    _, hf, model = loaded
    scale = hf.config.logit_scale
    assert abs(math.log(scale)) > 2, "the tiny config must keep a logit_scale far from 1"
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        last = model.layers_output[-1]
        saved["projected"] = model.project_on_vocab(last).save()
        saved["naive"] = model.lm_head(model.ln_final(last)).save()
        saved["logits"] = model.logits.save()
        saved["next"] = model.next_token_probs.save()
    assert torch.equal(saved["projected"], saved["logits"])
    assert torch.equal(saved["logits"], saved["naive"] * scale)
    assert not torch.allclose(saved["naive"], saved["logits"])
    lens = logit_lens(model, PROMPTS)  # (batch, layers, vocab) at the last position
    assert torch.allclose(lens[:, -1], saved["next"], rtol=0, atol=1e-6)
    naive_probs = saved["naive"][:, -1].softmax(-1)
    assert (naive_probs - saved["next"]).abs().max() > 1e-4


def test_mlp_reads_the_layer_input_in_parallel_with_attention(loaded):
    _, _, model = loaded
    assert model.adapter.residual.kind == "parallel"
    push = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(0))
    for layer in range(model.num_layers):
        clean, edited = {}, {}
        with torch.no_grad(), model.trace(PROMPTS):
            clean["attention_input"] = model.attentions_input[layer].save()
            clean["mlp_input"] = model.mlps_input[layer].save()
            clean["mlp_output"] = model.mlps_output[layer].save()
            clean["layer_output"] = model.layers_output[layer].save()
        with torch.no_grad(), model.trace(PROMPTS):
            model.attentions_output[layer] = model.attentions_output[layer] + push
            edited["mlp_input"] = model.mlps_input[layer].save()
            edited["mlp_output"] = model.mlps_output[layer].save()
            edited["layer_output"] = model.layers_output[layer].save()
        assert torch.equal(clean["mlp_input"], clean["attention_input"]), f"layer {layer}"
        assert torch.equal(edited["mlp_input"], clean["mlp_input"]), f"layer {layer}"
        assert torch.equal(edited["mlp_output"], clean["mlp_output"]), f"layer {layer}"
        assert not torch.equal(edited["layer_output"], clean["layer_output"]), f"layer {layer}"


@pytest.mark.parametrize("model_type", SLIDING_TYPES)
def test_only_sliding_layers_rotate_and_window_and_full_layers_do_neither(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    kinds = hf.config.layer_types
    assert {"sliding_attention", "full_attention"} <= set(kinds)
    window = hf.config.sliding_window
    ids = tokenizer(PROMPTS[:1], return_tensors="pt").input_ids
    assert ids.shape[1] > window + 1
    saved: dict[int, dict[str, torch.Tensor]] = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            saved[layer] = {
                "queries": model.queries[layer].save(),
                "rotated": model.rotated_queries[layer].save(),
                "probabilities": model.attention_probabilities[layer].save(),
            }
    beyond = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril(-window)
    for layer, kind in enumerate(kinds):
        attention = hf.model.layers[layer].self_attn
        rotates = kind == "sliding_attention" or getattr(attention, "force_rope", False)
        seen = saved[layer]
        assert torch.equal(seen["queries"], seen["rotated"]) == (not rotates), f"layer {layer} ({kind})"
        far = seen["probabilities"][..., beyond]
        if kind == "sliding_attention":
            assert bool((far == 0).all()), f"layer {layer} attends beyond its window"
        else:
            assert bool((far > 0).all()), f"layer {layer} ({kind}) should attend every earlier key"
    if model_type == "cohere2_moe":
        assert hf.model.layers[0].self_attn.force_rope and kinds[0] == "full_attention"


def test_cohere_queries_and_keys_are_read_after_the_optional_per_head_norm():
    hf, tokenizer = build_tiny("cohere", overrides={"use_qk_norm": True})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.attentions_input[0].save()
        saved["queries"] = model.queries[0].save()
        saved["keys"] = model.keys[0].save()
    attention = hf.model.layers[0].self_attn
    batch, seq, _ = saved["input"].shape
    with torch.no_grad():
        projected = attention.q_proj(saved["input"]).view(batch, seq, -1, model.head_dim)
        keys = attention.k_proj(saved["input"]).view(batch, seq, -1, model.head_dim)
        queries = attention.q_norm(projected).transpose(1, 2)
        keys = attention.k_norm(keys).transpose(1, 2)
    assert torch.equal(saved["queries"], queries)
    assert torch.equal(saved["keys"], keys)
    assert not torch.allclose(saved["queries"], projected.transpose(1, 2))


SELECTIONS = {
    "softmax": ({"expert_selection_fn": "softmax", "norm_topk_prob": False}, True),
    "sigmoid, normalised": ({"expert_selection_fn": "sigmoid", "norm_topk_prob": True}, True),
    "sigmoid, unnormalised": ({"expert_selection_fn": "sigmoid", "norm_topk_prob": False}, False),
}


@pytest.mark.parametrize("selection", SELECTIONS)
def test_cohere2_moe_routing_weights_and_ablation_follow_the_expert_selection(selection):
    """Weights are the router's own function of its top-k logits; ablation renormalises exactly when it does."""
    overrides, normalised = SELECTIONS[selection]
    hf, tokenizer = build_tiny("cohere2_moe", overrides=overrides)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.normalizes_top_k is normalised
    layer, ablated = 1, 0  # the first routed layer (layer 0 is a dense prefix)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["logits"] = model.routers_output[layer].save()
        saved["top"] = model.router_top_k[layer]
        saved["indices"], saved["weights"] = saved["top"].indices.save(), saved["top"].weights.save()
    with torch.no_grad(), model.trace(PROMPTS):
        model.ablate_experts(layer, ablated)
        saved["kept"] = model.router_top_k[layer].weights.save()
    top_logits, indices = torch.topk(saved["logits"], hf.config.num_experts_per_tok, dim=-1)
    assert torch.equal(saved["indices"], indices)
    if selection == "softmax":
        by_hand = torch.softmax(top_logits, dim=-1, dtype=torch.float)
    else:
        by_hand = torch.sigmoid(top_logits)
        by_hand = by_hand / by_hand.sum(-1, keepdim=True) if normalised else by_hand
    assert torch.equal(saved["weights"], by_hand.to(saved["weights"].dtype))
    hit = (indices == ablated).any(-1)
    assert bool(hit.any()) and bool((~hit).any())
    kept = torch.where(indices == ablated, torch.zeros_like(by_hand), by_hand)
    expected = kept / kept.sum(-1, keepdim=True) if normalised else kept
    assert torch.allclose(saved["kept"][hit], expected[hit], atol=1e-6, rtol=0)
    assert torch.equal(saved["kept"][~hit], saved["weights"][~hit])


def test_cohere2_moe_with_unnormalised_sigmoid_routing_passes_the_suite():
    hf, tokenizer = build_tiny("cohere2_moe", overrides=SELECTIONS["sigmoid, unnormalised"][0])
    report = nnrosetta_conformance.run(StandardizedTransformer(hf, tokenizer=tokenizer))
    assert [(r.name, r.status, r.message) for r in report.results if r.status not in ("passed", "skipped")] == []
    assert ("moe_routing", "passed") in [(r.name, r.status) for r in report.results]
