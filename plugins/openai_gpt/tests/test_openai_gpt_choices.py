"""Original-GPT family choices: post-norm blocks and no final norm, each shown against the naive version.

- No final norm: the logits are ``lm_head(layers_output[-1])``; treating the last
  block's ``ln_2`` as ``ln_final`` (the naive pre-norm reading) normalises twice.
- Post-norm: the attention reads the layer input itself, the MLP reads
  ``ln_1(layers_input + attentions_output)``, and the layer output is
  ``ln_2(mlps_input + mlps_output)``, not the pre-norm sum.
- ``token_embeddings`` is ``tokens_embed``'s output; layer 0 adds the learned positions.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept", "Paris is"]


@pytest.fixture(scope="module")
def loaded():
    hf, tokenizer = build_tiny("openai-gpt")
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_logits_are_lm_head_of_the_last_block_with_no_final_norm(loaded):
    hf, model = loaded
    with torch.no_grad(), model.trace(PROMPTS):
        last = model.layers_output[-1].save()
        logits = model.logits.save()
    with torch.no_grad():
        assert torch.equal(model.project_on_vocab(last), logits)
        assert torch.equal(hf.lm_head(last), logits)
        twice_normed = hf.lm_head(hf.transformer.h[-1].ln_2(last))
        assert not torch.allclose(twice_normed, logits)
    with pytest.raises(CapabilityError, match="ln_final"):
        model.ln_final


def test_blocks_are_post_norm(loaded):
    hf, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = (
                model.layers_input[layer].save(),
                model.attentions_input[layer].save(),
                model.attentions_output[layer].save(),
                model.mlps_input[layer].save(),
                model.mlps_output[layer].save(),
                model.layers_output[layer].save(),
            )
    with torch.no_grad():
        for layer, (layer_in, attention_in, attention_out, mlp_in, mlp_out, layer_out) in saved.items():
            block = hf.transformer.h[layer]
            assert torch.equal(attention_in, layer_in)
            assert torch.equal(mlp_in, block.ln_1(layer_in + attention_out))
            assert torch.equal(layer_out, block.ln_2(mlp_in + mlp_out))
            assert not torch.allclose(layer_out, layer_in + attention_out + mlp_out)


def test_token_embeddings_are_tokens_embed_alone_and_layer_zero_adds_positions(loaded):
    hf, model = loaded
    ids = model.tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    with torch.no_grad(), model.trace(ids):
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    with torch.no_grad():
        positions = torch.arange(ids.shape[1])[None]
        assert torch.equal(embeddings, hf.transformer.tokens_embed(ids))
        assert torch.equal(first_input, embeddings + hf.transformer.positions_embed(positions))


def test_heads_are_c_attn_split_in_blocks_and_give_the_probabilities():
    """queries/keys/values[i] are c_attn's [q | k | v] blocks split into heads by hand, and the
    served probabilities are softmax(q·kᵀ/sqrt(head_dim)) of them under the causal mask; the keys
    are served (batch, heads, seq, head_dim), not as `_attn` receives them (head_dim before seq)."""
    hf, tokenizer = build_tiny("openai-gpt")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    length, hidden = ids.shape[1], model.hidden_size
    saved = {}
    with torch.no_grad(), model.trace(ids):
        for layer in range(model.num_layers):
            saved[layer] = [model.attentions_input[layer].save()] + [
                getattr(model, name)[layer].save() for name in ("queries", "keys", "values")
            ] + [model.attention_probabilities[layer].save()]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    for layer, (attention_input, queries, keys, values, probabilities) in saved.items():
        with torch.no_grad():
            fused = hf.transformer.h[layer].attn.c_attn(attention_input)
        for slot, seen in enumerate((queries, keys, values)):
            block = fused[..., slot * hidden : (slot + 1) * hidden]
            assert torch.equal(seen, block.view(1, length, model.num_heads, model.head_dim).transpose(1, 2)), layer
        scores = (queries @ keys.transpose(-1, -2) / model.head_dim**0.5).masked_fill(~causal, -1e4)
        assert torch.allclose(probabilities, torch.softmax(scores, dim=-1), atol=1e-6, rtol=0), layer
