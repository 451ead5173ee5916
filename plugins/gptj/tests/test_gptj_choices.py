"""GPT-J / CodeGen family choices that a rename map alone gets wrong, each shown against the naive version.

- Parallel block: one ``ln_1`` feeds attention and MLP, so ``mlps_input[i]`` is
  ``attentions_input[i]``, not (the norm of) ``layers_input[i] + attentions_output[i]``.
- Partial rotary: the attention probabilities are those of queries and keys rotated
  (interleaved, ``rotate_every_two``) on the first ``rotary_dim`` dimensions only;
  rotating whole heads gives other probabilities.
- Per-head values are the forward's own ``query``/``key``/``value``, read seq-first
  before rotary: GPT-J's are its three projections split into heads; CodeGen's
  ``qkv_proj`` is laid out per model-parallel shard ([queries | values | keys] of
  each shard's heads), which neither fused layout the core knows would split.
"""

from __future__ import annotations

import pytest
import torch
from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb, create_sinusoidal_positions

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept", "Paris is"]
PROMPT = "The cat sat on the mat and the dog slept by the door"


def _load(model_type: str, **options):
    hf, tokenizer = build_tiny(model_type)
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer, **options)


@pytest.mark.parametrize("model_type", ["gptj", "codegen"])
def test_mlp_reads_the_same_normed_input_as_attention_not_the_attention_sum(model_type):
    hf, model = _load(model_type)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = (
                model.layers_input[layer].save(),
                model.attentions_input[layer].save(),
                model.attentions_output[layer].save(),
                model.mlps_input[layer].save(),
            )
    with torch.no_grad():
        for layer, (layer_input, attention_input, attention_output, mlp_input) in saved.items():
            ln_1 = hf.transformer.h[layer].ln_1
            assert torch.equal(attention_input, ln_1(layer_input))
            assert torch.equal(mlp_input, attention_input)
            assert not torch.allclose(mlp_input, layer_input + attention_output)
            assert not torch.allclose(mlp_input, ln_1(layer_input + attention_output))


def _probabilities(query, key, rotary_dim, positions):
    """Causal softmax(q·kᵀ/√d) after GPT-J's interleaved rotary on the first ``rotary_dim`` dims."""
    sincos = create_sinusoidal_positions(positions, rotary_dim)[None]
    sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
    rotate = lambda x: torch.cat([apply_rotary_pos_emb(x[..., :rotary_dim], sin, cos), x[..., rotary_dim:]], -1)  # noqa: E731
    query, key = rotate(query).transpose(1, 2), rotate(key).transpose(1, 2)
    scores = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5
    causal = torch.ones(positions, positions, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, torch.finfo(scores.dtype).min).softmax(-1)


def test_attention_probabilities_follow_rotary_on_the_first_rotary_dim_dimensions_only():
    hf, model = _load("gptj", enable_attention_probs=True)
    rotary_dim, head_dim = hf.config.rotary_dim, model.head_dim
    assert 0 < rotary_dim < head_dim
    ids = model.tokenizer(PROMPT, return_tensors="pt").input_ids
    saved = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            saved[layer] = (model.attentions_input[layer].save(), model.attention_probabilities[layer].save())
    positions = ids.shape[1]
    with torch.no_grad():
        for layer, (attention_input, probabilities) in saved.items():
            attention = hf.transformer.h[layer].attn
            shape = (1, positions, model.num_heads, head_dim)
            query, key = attention.q_proj(attention_input).view(shape), attention.k_proj(attention_input).view(shape)
            partial = _probabilities(query, key, rotary_dim, positions)
            whole_heads = _probabilities(query, key, head_dim, positions)
            assert torch.allclose(probabilities, partial, atol=1e-6, rtol=0), layer
            assert not torch.allclose(probabilities, whole_heads, atol=1e-3, rtol=0), layer


def _saved_heads(model):
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = (
                model.attentions_input[layer].save(),
                model.queries[layer].save(),
                model.keys[layer].save(),
                model.values[layer].save(),
            )
    return saved


def test_gptj_heads_are_the_projections_split_by_hand_before_rotary():
    hf, model = _load("gptj")
    for layer, (attention_input, queries, keys, values) in _saved_heads(model).items():
        attention = hf.transformer.h[layer].attn
        split = lambda x: x.view(*x.shape[:-1], model.num_heads, model.head_dim).transpose(1, 2)  # noqa: E731
        with torch.no_grad():
            assert torch.equal(queries, split(attention.q_proj(attention_input))), layer
            assert torch.equal(keys, split(attention.k_proj(attention_input))), layer
            assert torch.equal(values, split(attention.v_proj(attention_input))), layer


def test_codegen_heads_unpick_qkv_proj_per_model_parallel_shard():
    hf, model = _load("codegen")
    heads, head_dim, hidden = model.num_heads, model.head_dim, model.hidden_size
    shards = hf.transformer.h[0].attn.mp_num
    assert heads % shards == 0 and heads // shards > 1  # several heads per shard: the layout shows
    for layer, (attention_input, queries, keys, values) in _saved_heads(model).items():
        with torch.no_grad():
            fused = hf.transformer.h[layer].attn.qkv_proj(attention_input)
        leading, local = fused.shape[:-1], hidden // shards
        query, value, key = fused.view(*leading, shards, 3 * local).split(local, dim=-1)
        by_shard = lambda x: x.reshape(*leading, heads, head_dim).transpose(1, 2)  # noqa: E731
        assert torch.equal(queries, by_shard(query)), layer
        assert torch.equal(keys, by_shard(key)), layer
        assert torch.equal(values, by_shard(value)), layer
        blocks = fused[..., 2 * hidden :].reshape(*leading, heads, head_dim).transpose(1, 2)
        per_head = fused.view(*leading, heads, 3, head_dim)[..., 2, :].transpose(1, 2)
        assert not torch.allclose(blocks, values) and not torch.allclose(per_head, values), layer
