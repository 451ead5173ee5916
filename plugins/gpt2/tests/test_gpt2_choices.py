"""GPT-2-specific choices: what `token_embeddings` is, and the fused-name renames."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of France is", "Hi"]


def test_token_embeddings_are_wte_alone_and_layer_zero_adds_positions():
    hf, tokenizer = build_tiny("gpt2")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        input_ids = model.input_ids.save()
        position_ids = model.inputs[1]["position_ids"].save()
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    with torch.no_grad():
        assert torch.equal(embeddings, hf.transformer.wte(input_ids))
        assert torch.equal(first_input, embeddings + hf.transformer.wpe(position_ids))


def test_standard_names_point_at_the_gpt2_modules():
    hf, tokenizer = build_tiny("gpt2")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layers[1].self_attn._module is hf.transformer.h[1].attn
    assert model.ln_final._module is hf.transformer.ln_f
    assert model.embed_tokens._module is hf.transformer.wte
    assert (model.num_layers, model.num_heads, model.hidden_size) == (2, 4, 32)
