"""GPT-J / CodeGen family choices that a rename map alone gets wrong, each shown against the naive version.

- Parallel block: one ``ln_1`` feeds attention and MLP, so ``mlps_input[i]`` is
  ``attentions_input[i]``, not (the norm of) ``layers_input[i] + attentions_output[i]``.
- Partial rotary: the attention probabilities are those of queries and keys rotated
  (interleaved, ``rotate_every_two``) on the first ``rotary_dim`` dimensions only;
  rotating whole heads gives other probabilities.
- CodeGen's ``qkv_proj`` is laid out per model-parallel shard ([queries | values |
  keys] of each shard's heads): neither fused layout the core knows yields the values
  the attention uses, which is why the adapter declares no heads.
"""

from __future__ import annotations

import pytest
import torch
from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb, create_sinusoidal_positions

from nnrosetta import Argument, StandardizedTransformer, conventions
from nnrosetta.source_points import reach
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


def test_codegen_qkv_proj_is_laid_out_per_model_parallel_shard():
    hf, model = _load("codegen")
    assert model.adapter.heads is None
    for layer in range(model.num_layers):  # instrument every attention forward before tracing
        model.layers[layer].self_attn.source
    heads, head_dim, hidden = model.num_heads, model.head_dim, model.hidden_size
    shards = hf.transformer.h[0].attn.mp_num
    assert heads % shards == 0 and heads // shards > 1  # several heads per shard: the layout shows
    received_at = Argument(conventions.ATTENTION_CALL, 3)  # the values the attention function receives
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            attention = model.layers[layer].self_attn
            saved[layer] = (
                attention.qkv_proj.output.save(),
                reach(attention, received_at, model.adapter, "test").value.save(),
            )
    for layer, (fused, received) in saved.items():
        leading = fused.shape[:-1]
        local = hidden // shards
        _, values, _ = fused.view(*leading, shards, 3 * local).split(local, dim=-1)
        by_shard = values.reshape(*leading, heads, head_dim).transpose(1, 2)
        assert torch.equal(by_shard, received), layer
        blocks = fused[..., 2 * hidden :].reshape(*leading, heads, head_dim).transpose(1, 2)
        per_head = fused.view(*leading, heads, 3, head_dim)[..., 2, :].transpose(1, 2)
        assert not torch.allclose(blocks, received) and not torch.allclose(per_head, received), layer
