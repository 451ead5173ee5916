"""MPT-specific choices: the probabilities carry the ALiBi bias the attention adds to its scores."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny
from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

PROMPT = "The cat sat on the mat and the dog"


def test_attention_probabilities_carry_the_alibi_bias():
    """attention_probabilities[i] is softmax(q·kᵀ·scale + ALiBi) under the causal mask, by hand.

    The bias-free softmax (what `attention_patterns` recomputes for transformers' attention
    functions, and what a plain softmax point would hold if the bias were added later) differs.
    """
    hf, tokenizer = build_tiny("mpt")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    layer = model.num_layers - 1
    with torch.no_grad(), model.trace(PROMPT):
        attention_input = model.attentions_input[layer].save()
        probabilities = model.attention_probabilities[layer].save()
    attention = hf.transformer.blocks[layer].attn
    batch, seq, _ = attention_input.shape
    with torch.no_grad():
        query, key, _ = attention.Wqkv(attention_input).chunk(3, dim=2)
        query, key = (x.reshape(batch, seq, attention.n_heads, -1).transpose(1, 2) for x in (query, key))
        scores = torch.matmul(query, key.transpose(-1, -2)) * attention.softmax_scale
    alibi = build_mpt_alibi_tensor(attention.n_heads, hf.config.max_seq_len)[:, :, -seq:]
    later = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    minimum = torch.finfo(scores.dtype).min
    with_bias = torch.softmax((scores + alibi).masked_fill(later, minimum).float(), dim=-1)
    without_bias = torch.softmax(scores.masked_fill(later, minimum).float(), dim=-1)
    assert probabilities.shape == (batch, model.num_heads, seq, seq)
    assert torch.equal(probabilities, with_bias)
    assert not torch.allclose(probabilities, without_bias, atol=1e-3)


def test_heads_are_the_clamped_wqkv_chunks_split_by_hand():
    """queries/keys/values[i] are Wqkv's output clamped to ±clip_qkv, chunked [q | k | v] and split into
    heads: the forward's own tensors after the clamp, not Wqkv's raw output."""
    hf, tokenizer = build_tiny("mpt", overrides={"attn_config": {"clip_qkv": 0.05}})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    layer = model.num_layers - 1
    served = {}
    with torch.no_grad(), model.trace(PROMPT):
        attention_input = model.attentions_input[layer].save()
        for name in ("queries", "keys", "values"):
            served[name] = getattr(model, name)[layer].save()
    attention = hf.transformer.blocks[layer].attn
    batch, seq, _ = attention_input.shape
    split = lambda x: x.reshape(batch, seq, model.num_heads, model.head_dim).transpose(1, 2)  # noqa: E731
    with torch.no_grad():
        raw = attention.Wqkv(attention_input)
    clamped = raw.clamp(min=-attention.clip_qkv, max=attention.clip_qkv)
    assert not torch.equal(clamped, raw)
    for name, chunk, unclamped in zip(served, clamped.chunk(3, dim=2), raw.chunk(3, dim=2)):
        assert torch.equal(served[name], split(chunk)), name
        assert not torch.equal(served[name], split(unclamped)), name
