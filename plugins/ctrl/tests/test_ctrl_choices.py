"""CTRL family choices: embeddings scaled outside the embedding module, and an attention fed three times.

- ``token_embeddings`` is ``w``'s output unscaled; layer 0 reads it times
  ``sqrt(n_embd)`` plus the sinusoidal position table (a naive reading in which the
  embedding output is what layer 0 reads, as in Gemma, is off by that scale). The
  model scales that output in place, so a saved reference ends up scaled: copy it.
- ``multi_head_attention(v, k, q)`` gets the normed input three times;
  ``attentions_input[i]`` is the first (``v``): writing it changes what the values
  carry but leaves the queries, keys and so the probabilities as they were.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept"


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("ctrl")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    return hf, model, tokenizer(PROMPT, return_tensors="pt").input_ids


def test_token_embeddings_are_unscaled_and_layer_zero_reads_them_scaled_plus_positions(loaded):
    hf, model, ids = loaded
    with torch.no_grad(), model.trace(ids):
        as_read = model.token_embeddings.clone().save()
        kept = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    scale = model.hidden_size**0.5
    with torch.no_grad():
        table = hf.transformer.w(ids)
        assert torch.equal(as_read, table)
        # The model scales the embedding output in place (`inputs_embeds *= sqrt(n_embd)`), so a tensor
        # kept without a copy holds the scaled values once the forward has run.
        assert torch.equal(kept, table * scale)
        positions = hf.transformer.pos_encoding[torch.arange(ids.shape[1])]
        assert torch.equal(first_input, as_read * scale + positions)
        assert not torch.allclose(first_input, as_read, atol=1e-2)


def test_attentions_input_is_the_values_input_of_a_call_fed_three_times(loaded):
    hf, model, ids = loaded
    layer = 0
    with torch.no_grad(), model.trace(ids):
        layer_input = model.layers_input[layer].save()
        attention_input = model.attentions_input[layer].save()
        inputs = model.layers[layer].self_attn.inputs.save()
        probabilities = model.attention_probabilities[layer].save()
        output = model.attentions_output[layer].save()
    args = inputs[0]
    with torch.no_grad():
        assert torch.equal(attention_input, hf.transformer.h[layer].layernorm1(layer_input))
        assert all(torch.equal(arg, attention_input) for arg in args[:3])
    with torch.no_grad(), model.trace(ids):
        edited = model.attentions_input[layer].clone()
        edited[:, 0] += 10.0
        model.attentions_input[layer] = edited
        edited_probabilities = model.attention_probabilities[layer].save()
        edited_output = model.attentions_output[layer].save()
    assert torch.equal(edited_probabilities, probabilities)
    assert not torch.allclose(edited_output[:, 1:], output[:, 1:])
