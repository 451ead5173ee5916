"""BLOOM-specific choices: sublayers that add the residual themselves, ALiBi over a per-head fused qkv
read inside ``self_attention`` (the module the ``self_attn`` span starts in)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.models.bloom.modeling_bloom import build_alibi_tensor

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of France is", "Hi"]
PROMPT = "The cat sat on the mat and the dog"


def _load(**overrides) -> tuple[torch.nn.Module, StandardizedTransformer]:
    hf, tokenizer = build_tiny("bloom", overrides=overrides or None)
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_attention_module_output_is_the_stream_after_attention():
    """What the spans read: the attention's dense output is what the module adds to its residual argument."""
    hf, model = _load()
    with torch.no_grad(), model.trace(PROMPTS):
        layer_input = model.layers_input[0].save()
        attention = model.attentions_output[0].save()
        module_output = model.layers[0].self_attention.output[0].save()
        mlp_input = model.mlps_input[0].save()
    with torch.no_grad():
        assert torch.equal(module_output, layer_input + attention)
        assert torch.equal(mlp_input, hf.transformer.h[0].post_attention_layernorm(module_output))


def test_token_embeddings_are_raw_and_layer_zero_reads_them_normalised():
    hf, model = _load()
    with torch.no_grad(), model.trace(PROMPTS):
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    with torch.no_grad():
        assert torch.equal(first_input, hf.transformer.word_embeddings_layernorm(embeddings))
    assert not torch.equal(first_input, embeddings)


def test_heads_are_query_key_value_split_per_head_and_the_probabilities_carry_alibi():
    """Served heads are ``query_key_value`` split per head by hand; the served probabilities are
    softmax(alibi + q·kᵀ/sqrt(d)) of them. A blocks split ([q | k | v]) or scores without ALiBi
    give other values."""
    hf, tokenizer = build_tiny("bloom")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    layer = model.num_layers - 1
    # Instrument the forward before the trace: first instrumented inside it, the forward's
    # dropout point is no longer reachable once query_key_value has been read (ReadOrderError).
    model.layers[layer].self_attention.source
    served = {}
    with torch.no_grad(), model.trace(PROMPT):
        mask = model.attention_mask.save()
        attention_input = model.attentions_input[layer].save()
        for name in ("queries", "keys", "values"):
            served[name] = getattr(model, name)[layer].save()
        served["probabilities"] = model.attention_probabilities[layer].save()
    attention = hf.transformer.h[layer].self_attention
    heads, head_dim = model.num_heads, model.head_dim
    batch, seq, _ = attention_input.shape
    alibi = build_alibi_tensor(mask, heads, attention_input.dtype)
    later = torch.ones(seq, seq, dtype=torch.bool).triu(1)

    def probabilities(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        query, key = (x.reshape(batch * heads, seq, head_dim) for x in (query, key))
        scores = alibi.baddbmm(batch1=query, batch2=key.transpose(-1, -2), beta=1.0, alpha=1 / math.sqrt(head_dim))
        scores = scores.view(batch, heads, seq, seq).masked_fill(later, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1, dtype=torch.float32)

    with torch.no_grad():
        fused = attention.query_key_value(attention_input)
    per_head = fused.view(batch, seq, heads, 3, head_dim).transpose(1, 2)
    for slot, name in enumerate(("queries", "keys", "values")):
        assert torch.equal(served[name], per_head[..., slot, :]), name
    blocks = fused.view(batch, seq, 3, heads, head_dim).transpose(1, 3)
    assert not torch.allclose(served["queries"], blocks[:, :, 0], atol=1e-3)
    assert torch.equal(served["probabilities"], probabilities(served["queries"], served["keys"]))
    plain = torch.softmax(
        (served["queries"] @ served["keys"].transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(
            later, torch.finfo(fused.dtype).min
        ),
        dim=-1,
    )
    assert not torch.allclose(plain, served["probabilities"], atol=1e-3)


@pytest.mark.parametrize(
    "overrides, option",
    [
        ({"apply_residual_connection_post_layernorm": True}, "apply_residual_connection_post_layernorm=True"),
        ({"pretraining_tp": 2, "slow_but_exact": True}, "slow_but_exact=True with pretraining_tp=2"),
    ],
)
def test_options_that_bypass_the_declaration_are_refused(overrides, option):
    hf, tokenizer = build_tiny("bloom", overrides=overrides)
    with pytest.raises(UnsupportedArchitectureError, match=option):
        StandardizedTransformer(hf, tokenizer=tokenizer)
