"""GPT-NeoX family choices that a rename map alone gets wrong, each shown against the naive version.

- ``query_key_value`` is interleaved per head: the heads are a per-head split of its
  output, not three blocks (the naive GPT-2-style split gives other tensors).
- Parallel residual: the MLP reads the layer input through its own norm, so
  ``mlps_input[i]`` is not the norm of ``layers_input[i] + attentions_output[i]``;
  a ``use_parallel_residual=False`` checkpoint is served with the MLP after that sum.
- Partial rotary: only the first quarter of each head is rotated; the rest reaches
  the attention function unchanged.
- The logit lens through nnrosetta matches one written by hand with HuggingFace hooks.
- GPT-NeoX-Japanese adds its last attention's ``dense_bias`` outside the attention module;
  its heads are split the same per-head way and read at its own ``self._attn`` call.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.interventions import logit_lens
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept", "Paris is"]


@pytest.fixture(scope="module")
def pythia():
    hf, tokenizer = build_tiny("gpt_neox")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    # Instrument every attention forward before tracing: the core does it at load for layer 0 only,
    # and a forward first instrumented while it already runs cannot be reached (OutOfOrderError).
    for layer in range(model.num_layers):
        model.layers[layer].self_attn.source
    return hf, tokenizer, model


def _rotary_dims(hf) -> int:
    attention = hf.gpt_neox.layers[0].attention
    return attention.rotary_ndims


def test_heads_are_a_per_head_split_of_query_key_value_not_three_blocks(pythia):
    hf, _, model = pythia
    heads, head_dim, hidden = model.num_heads, model.head_dim, model.hidden_size
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = {
                "fused": model.layers[layer].self_attn.query_key_value.output.save(),
                "queries": model.queries[layer].save(),
                "keys": model.keys[layer].save(),
                "values": model.values[layer].save(),
            }
    for layer, seen in saved.items():
        fused = seen["fused"]
        per_head = fused.view(*fused.shape[:-1], heads, 3, head_dim)
        for slot, name in enumerate(("queries", "keys", "values")):
            by_hand = per_head[..., slot, :].transpose(1, 2)
            assert torch.equal(seen[name], by_hand), (layer, name)
            blocks = fused[..., slot * hidden : (slot + 1) * hidden]
            naive = blocks.view(*fused.shape[:-1], heads, head_dim).transpose(1, 2)
            assert not torch.allclose(seen[name], naive), (layer, name)


def test_parallel_residual_mlp_reads_the_layer_input_not_the_attention_sum(pythia):
    hf, _, model = pythia
    assert hf.config.use_parallel_residual
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
            block = hf.gpt_neox.layers[layer]
            assert torch.equal(attention_input, block.input_layernorm(layer_input))
            assert torch.equal(mlp_input, block.post_attention_layernorm(layer_input))
            sequential = block.post_attention_layernorm(layer_input + attention_output)
            assert not torch.allclose(mlp_input, sequential)
            assert not torch.allclose(mlp_input, layer_input + attention_output)


def test_a_sequential_checkpoint_is_served_with_the_mlp_after_the_attention_sum():
    hf, tokenizer = build_tiny("gpt_neox", overrides={"use_parallel_residual": False})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = (
                model.layers_input[layer].save(),
                model.attentions_output[layer].save(),
                model.mlps_input[layer].save(),
                model.mlps_output[layer].save(),
                model.layers_output[layer].save(),
            )
    with torch.no_grad():
        for layer, (layer_input, attention_output, mlp_input, mlp_output, layer_output) in saved.items():
            middle = attention_output + layer_input
            assert torch.equal(mlp_input, hf.gpt_neox.layers[layer].post_attention_layernorm(middle))
            assert torch.equal(layer_output, mlp_output + middle)


def test_rotary_covers_a_quarter_of_each_head_and_queries_are_read_before_it(pythia):
    hf, _, model = pythia
    rotary = _rotary_dims(hf)
    assert 0 < rotary < model.head_dim and rotary == model.head_dim // 4
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = {
                "queries": model.queries[layer].save(),
                "keys": model.keys[layer].save(),
                "rotated_queries": model.rotated_queries[layer].save(),
                "rotated_keys": model.rotated_keys[layer].save(),
            }
    for layer, seen in saved.items():
        for name in ("queries", "keys"):
            before, after = seen[name], seen[f"rotated_{name}"]
            # The dimensions past the rotary fraction pass through untouched ...
            assert torch.equal(before[..., rotary:], after[..., rotary:]), (layer, name)
            # ... the rotary ones are rotated (away from position 0).
            moved = (before[..., 1:, :rotary] - after[..., 1:, :rotary]).abs().amax()
            assert float(moved) > 1e-4, (layer, name)


def test_logit_lens_matches_a_hand_written_huggingface_hooks_reference(pythia):
    hf, tokenizer, model = pythia
    lens = logit_lens(model, PROMPTS)  # (batch, layers, vocab) at the last position
    encoding = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    position_ids = (encoding["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    outputs: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
             for layer in hf.gpt_neox.layers]
    try:
        with torch.no_grad():
            hf(**encoding, position_ids=position_ids)
            reference = torch.stack(
                [hf.lm_head(hf.gpt_neox.final_layer_norm(hidden[:, -1])).softmax(-1) for hidden in outputs], dim=1
            )
    finally:
        for hook in hooks:
            hook.remove()
    assert lens.shape == reference.shape == (len(PROMPTS), model.num_layers, model.vocab_size)
    assert torch.equal(lens.topk(5, dim=-1).indices, reference.topk(5, dim=-1).indices)
    assert torch.allclose(lens, reference, atol=1e-6, rtol=0)


def test_japanese_last_layer_adds_dense_bias_outside_the_attention_module():
    hf, tokenizer = build_tiny("gpt_neox_japanese")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    last = model.num_layers - 1
    bias = hf.gpt_neox_japanese.layers[last].attention.dense_bias.detach()
    assert float(bias.abs().max()) > 0
    assert all(layer.attention.dense_bias is None for layer in hf.gpt_neox_japanese.layers[:last])
    with torch.no_grad(), model.trace(PROMPTS):
        layer_input = model.layers_input[last].save()
        attention = model.attentions_output[last].save()
        mlp = model.mlps_input[last].save()
        mlp_output = model.mlps_output[last].save()
        layer_output = model.layers_output[last].save()
    with torch.no_grad():
        middle = layer_input + (attention + bias)
        block = hf.gpt_neox_japanese.layers[last]
        assert torch.equal(mlp, block.post_attention_layernorm(middle))
        assert torch.equal(layer_output, middle + mlp_output)
        assert not torch.allclose(layer_output, layer_input + attention + mlp_output)


def test_japanese_heads_are_a_per_head_split_and_rotated_ones_are_what_its_own_attn_receives():
    hf, tokenizer = build_tiny("gpt_neox_japanese")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    for layer in range(model.num_layers):
        model.layers[layer].self_attn.source
    heads, head_dim = model.num_heads, model.head_dim
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = [model.attentions_input[layer].save()] + [
                getattr(model, name)[layer].save() for name in ("queries", "keys", "values", "rotated_queries")
            ]
    for layer, (attention_input, queries, keys, values, rotated) in saved.items():
        with torch.no_grad():
            fused = hf.gpt_neox_japanese.layers[layer].attention.query_key_value(attention_input)
        per_head = fused.view(*fused.shape[:-1], heads, 3, head_dim).transpose(1, 2)
        assert torch.equal(queries, per_head[..., 0, :]), layer
        assert torch.equal(keys, per_head[..., 1, :]), layer
        assert torch.equal(values, per_head[..., 2, :]), layer
        # rotary over whole heads (partial_rotary_factor 1.0): position 0 is unrotated, later ones move
        assert torch.equal(rotated[0, :, 0], queries[0, :, 0]), layer  # the longest prompt: no padding
        assert not torch.allclose(rotated[:, :, 1:], queries[:, :, 1:]), layer
