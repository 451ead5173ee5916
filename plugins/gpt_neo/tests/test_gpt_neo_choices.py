"""GPT-Neo family choices: alternating local and global attention, unscaled scores, and what `token_embeddings` is.

- Local layers see only the last ``window_size`` keys, global layers all of them:
  the probabilities served for each layer show it, and a naive declaration that
  treats every layer alike (or reads a probability that ignores the local mask)
  would show weight beyond the window on the local layer.
- ``token_embeddings`` is ``wte``'s output alone; layer 0 adds the learned positions.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris is"]


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("gpt_neo")
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)


def test_local_layers_attend_within_the_window_and_global_layers_beyond_it(loaded):
    hf, model = loaded
    kinds = list(hf.config.attention_layers)
    assert kinds == ["global", "local"]
    window = hf.config.window_size
    ids = model.tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    length = ids.shape[1]
    assert length > window + 2
    saved = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            saved[layer] = model.attention_probabilities[layer].save()
    query, key = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    beyond = (query - key >= window)[None, None].expand_as(saved[0])
    for layer, kind in enumerate(kinds):
        assert type(model.layers[layer].self_attn._module).__name__ == "GPTNeoSelfAttention"
        assert model.layers[layer].self_attn._module.attention_type == kind
        weight_beyond = float(saved[layer][beyond].abs().max())
        if kind == "local":
            assert weight_beyond == 0.0, layer
        else:
            assert weight_beyond > 1e-3, layer


def test_token_embeddings_are_wte_alone_and_layer_zero_adds_positions(loaded):
    hf, model = loaded
    with torch.no_grad(), model.trace(PROMPTS):
        input_ids = model.input_ids.save()
        position_ids = model.inputs[1]["position_ids"].save()
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    with torch.no_grad():
        assert torch.equal(embeddings, hf.transformer.wte(input_ids))
        assert torch.equal(first_input, embeddings + hf.transformer.wpe(position_ids))
        assert not torch.allclose(first_input, embeddings)


def test_heads_are_the_projections_split_and_their_unscaled_scores_give_the_probabilities(loaded):
    """queries/keys/values[i] are q/k/v_proj split into heads by hand; softmax(q·kᵀ) with no
    1/sqrt(head_dim) under each layer's mask is the served probabilities (the scaled scores that
    transformers' attention functions, and so `attention_patterns`, would use are other values)."""
    hf, model = loaded
    ids = model.tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    length, window = ids.shape[1], hf.config.window_size
    saved = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            saved[layer] = [model.attentions_input[layer].save()] + [
                getattr(model, name)[layer].save() for name in ("queries", "keys", "values")
            ] + [model.attention_probabilities[layer].save()]
    query_at, key_at = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    for layer, (attention_input, queries, keys, values, probabilities) in saved.items():
        attention = hf.transformer.h[layer].attn.attention
        split = lambda x: x.view(1, length, model.num_heads, model.head_dim).transpose(1, 2)  # noqa: E731
        with torch.no_grad():
            by_hand = [split(projection(attention_input)) for projection in (attention.q_proj, attention.k_proj, attention.v_proj)]
        for seen, expected in zip((queries, keys, values), by_hand):
            assert torch.equal(seen, expected), layer
        allowed = key_at <= query_at
        if attention.attention_type == "local":
            allowed &= query_at - key_at < window
        scores = queries @ keys.transpose(-1, -2)
        minimum = torch.finfo(scores.dtype).min
        unscaled = torch.softmax(scores.masked_fill(~allowed, minimum), dim=-1)
        scaled = torch.softmax((scores / model.head_dim**0.5).masked_fill(~allowed, minimum), dim=-1)
        assert torch.allclose(probabilities, unscaled, atol=1e-6, rtol=0), layer
        assert not torch.allclose(probabilities, scaled, atol=1e-3), layer
