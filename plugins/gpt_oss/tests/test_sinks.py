"""Attention sinks (`AttentionSpec.sinks`): the probabilities are HF eager's, without the sink column.

Each head's sink logit joins every softmax row and is dropped after it, so a row of
``attention_probabilities[i]`` sums to 1 minus the sink's share. Shown value for value
from the queries and keys the attention function receives and the declared parameter.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnrosetta import StandardizedTransformer, conventions, default_registry
from nnrosetta.attention import sink_logits
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.checks.base import CheckFailure
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept"


def _eager(model_type: str, adapter=None) -> tuple[torch.nn.Module, StandardizedTransformer]:
    hf, tokenizer = build_tiny(model_type, attn_implementation="eager")
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer, adapter=adapter)


def test_gpt_oss_declares_its_per_head_sinks():
    hf, model = _eager("gpt_oss")
    assert model.adapter.attention.sinks == "sinks"
    for layer in range(model.num_layers):
        assert sink_logits(model, layer) is hf.model.layers[layer].self_attn.sinks


def test_gpt_oss_rows_lack_exactly_the_sinks_share():
    hf, model = _eager("gpt_oss")
    seen = {}
    with torch.no_grad(), model.trace(PROMPT):
        for layer in range(model.num_layers):
            call = model.layers[layer].self_attn.source.attention_interface_1
            args, kwargs = call.inputs
            seen[layer] = (args[1].save(), args[2].save(), args[4].save(), model.attention_probabilities[layer].save())
    for layer, (query, key, mask, probabilities) in seen.items():
        attention = hf.model.layers[layer].self_attn
        key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
        scores = torch.matmul(query, key.transpose(2, 3)) * attention.scaling + mask
        sinks = attention.sinks.reshape(1, -1, 1, 1).expand(*scores.shape[:-1], 1)
        combined = torch.cat([scores, sinks], dim=-1)
        combined = combined - combined.max(dim=-1, keepdim=True).values
        softmax = torch.softmax(combined, dim=-1)
        assert torch.equal(probabilities, softmax[..., :-1])
        missing = 1 - probabilities.sum(-1)
        assert torch.allclose(missing, softmax[..., -1], atol=4 * torch.finfo(missing.dtype).eps, rtol=0)
        assert bool((missing > 1e-3).all())


def test_the_sink_check_passes_on_gpt_oss_and_fails_without_the_declaration():
    _, model = _eager("gpt_oss")
    CHECKS["attention_probabilities"].function(model)
    adapter = default_registry().resolve("gpt_oss")
    dropped = dataclasses.replace(adapter, attention=conventions.ATTENTION)
    _, undeclared = _eager("gpt_oss", adapter=dropped)
    with pytest.raises(CheckFailure, match=r"rows must sum to 1.*declare `attention.sinks`"):
        CHECKS["attention_probabilities"].function(undeclared)


def test_sinks_declared_on_a_model_without_them_fail_the_check():
    adapter = default_registry().resolve("llama")
    planted = dataclasses.replace(adapter, attention=dataclasses.replace(adapter.attention, sinks="sinks"))
    _, model = _eager("llama", adapter=planted)
    with pytest.raises(CheckFailure, match=r"declares attention sinks at `sinks`.*no attribute `sinks`"):
        CHECKS["attention_probabilities"].function(model)


def test_gpt_oss_heads_rotary_scales_by_yarns_attention_factor_and_patterns_include_the_sink():
    from transformers.models.gpt_oss.modeling_gpt_oss import apply_rotary_pos_emb

    hf, model = _eager("gpt_oss")
    factor = hf.model.rotary_emb.attention_scaling
    assert factor > 1.3  # YaRN's 0.1 ln(32) + 1 on the tiny config
    seen = {}
    with torch.no_grad(), model.trace(PROMPT):
        for layer in range(model.num_layers):
            seen[layer] = {
                "inputs": model.layers[layer].self_attn.inputs[1].save(),
                "queries": model.queries[layer].save(),
                "keys": model.keys[layer].save(),
                "rotated_queries": model.rotated_queries[layer].save(),
                "rotated_keys": model.rotated_keys[layer].save(),
                "pattern": model.attention_patterns(layer).save(),
                "probabilities": model.attention_probabilities[layer].save(),
            }
    for values in seen.values():
        cos, sin = values["inputs"]["position_embeddings"]
        queries, keys = apply_rotary_pos_emb(values["queries"], values["keys"], cos, sin)
        assert torch.equal(queries, values["rotated_queries"])
        assert torch.equal(keys, values["rotated_keys"])
        ratio = values["rotated_queries"].norm(dim=-1) / values["queries"].norm(dim=-1)
        assert torch.allclose(ratio, torch.full_like(ratio, factor), atol=1e-5, rtol=0)
        tolerance = 16 * torch.finfo(values["probabilities"].dtype).eps
        assert torch.allclose(values["pattern"], values["probabilities"], atol=tolerance, rtol=0)
    CHECKS["heads"].function(model)
