"""Phi family choices: Phi's parallel attention and MLP; partial rotary and Persimmon's q/k norm.

The suite's residual check holds for a parallel and a sequential layer alike
(``out = in + attn + mlp`` either way), and its rotary check compares head-vector
norms, which queries read after rotary would keep too. These tests pin what is
special: Phi's MLP reads the same normed input as its attention, so an edit of the
attention output never reaches the MLP of that layer (Persimmon's does); and
``queries[i]`` / ``keys[i]`` are the whole head vectors before rotary, after any
q/k LayerNorm, of which only the first ``partial_rotary_factor * head_dim``
dimensions are then rotated.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris"]
#: (model type, config overrides): Phi with its optional q/k LayerNorm on as well.
CASES = [("phi", {}), ("phi", {"qk_layernorm": True}), ("persimmon", {})]


def _load(model_type: str, overrides: dict | None = None) -> tuple:
    hf, tokenizer = build_tiny(model_type, overrides=overrides)
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer)


@pytest.mark.parametrize("model_type", ["phi", "persimmon"])
def test_phi_mlp_reads_the_layer_input_in_parallel_with_attention_and_persimmon_does_not(model_type):
    hf, model = _load(model_type)
    parallel = model_type == "phi"
    assert model.adapter.residual.kind == ("parallel" if parallel else "sequential")
    layer = 1
    push = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(0))
    clean, edited = {}, {}
    with torch.no_grad(), model.trace(PROMPTS):
        clean["attention_input"] = model.attentions_input[layer].save()
        clean["mlp_input"] = model.mlps_input[layer].save()
        clean["mlp_output"] = model.mlps_output[layer].save()
    with torch.no_grad(), model.trace(PROMPTS):
        model.attentions_output[layer] = model.attentions_output[layer] + push
        edited["mlp_input"] = model.mlps_input[layer].save()
        edited["mlp_output"] = model.mlps_output[layer].save()
    if parallel:
        # One input_layernorm feeds both sublayers; the attention's output never reaches this MLP.
        assert torch.equal(clean["mlp_input"], clean["attention_input"])
        assert torch.equal(edited["mlp_input"], clean["mlp_input"])
        assert torch.equal(edited["mlp_output"], clean["mlp_output"])
    else:
        assert not torch.equal(clean["mlp_input"], clean["attention_input"])
        assert not torch.equal(edited["mlp_input"], clean["mlp_input"])


def _queries_and_keys_by_hand(hf, model_type: str, layer: int, attention_input: torch.Tensor):
    """Per-head queries and keys before rotary, computed from the HF attention module's own parts."""
    attention = hf.model.layers[layer].self_attn
    batch, seq, _ = attention_input.shape
    heads = hf.config.num_attention_heads
    head_dim = hf.config.hidden_size // heads
    if model_type == "persimmon":
        fused = attention.query_key_value(attention_input).view(batch, seq, heads, 3, head_dim)
        queries, keys = fused[..., 0, :], fused[..., 1, :]
    else:
        queries = attention.q_proj(attention_input).view(batch, seq, -1, head_dim)
        keys = attention.k_proj(attention_input).view(batch, seq, -1, head_dim)
    if attention.qk_layernorm:
        if model_type == "persimmon":
            queries, keys = attention.q_layernorm(queries), attention.k_layernorm(keys)
        else:
            queries = attention.q_layernorm(queries.transpose(1, 2)).transpose(1, 2)
            keys = attention.k_layernorm(keys.transpose(1, 2)).transpose(1, 2)
    return queries.transpose(1, 2), keys.transpose(1, 2)


@pytest.mark.parametrize(("model_type", "overrides"), CASES, ids=["phi", "phi-qk_layernorm", "persimmon"])
def test_queries_and_keys_are_whole_heads_before_partial_rotary_after_the_qk_norm(model_type, overrides):
    hf, model = _load(model_type, overrides)
    layer = 0
    attention = hf.model.layers[layer].self_attn
    rotary = attention.rotary_ndims
    assert 0 < rotary < model.head_dim, "the tiny config must keep partial rotary"
    assert attention.qk_layernorm == (model_type == "persimmon" or bool(overrides))
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.attentions_input[layer].save()
        saved["queries"] = model.queries[layer].save()
        saved["keys"] = model.keys[layer].save()
        saved["rotated_queries"] = model.rotated_queries[layer].save()
        saved["rotated_keys"] = model.rotated_keys[layer].save()
    with torch.no_grad():
        queries, keys = _queries_and_keys_by_hand(hf, model_type, layer, saved["input"])
    assert torch.equal(saved["queries"], queries)
    assert torch.equal(saved["keys"], keys)
    for name in ("queries", "keys"):
        before, after = saved[name], saved[f"rotated_{name}"]
        # The dimensions past the rotary ones reach the attention untouched ...
        assert torch.equal(before[..., rotary:], after[..., rotary:])
        # ... the rotary ones are rotated (position 0 is the identity rotation; later ones are not).
        assert not torch.allclose(before[:, :, 1:, :rotary], after[:, :, 1:, :rotary])
