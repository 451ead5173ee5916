"""Llama-family choices: every claimed type resolves here and embeddings enter layer 0 unscaled."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer, default_registry
from nnrosetta_conformance.tiny import build_tiny
from nnrosetta_llama import MODEL_TYPES

PROMPTS = ["The capital of France is", "Hi"]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_claimed_type_resolves_to_the_llama_adapter_and_maps_its_modules(model_type):
    assert default_registry().resolve(model_type).name == "llama"
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layers[0].self_attn._module is hf.model.layers[0].self_attn
    assert model.ln_final._module is hf.model.norm
    assert model.embed_tokens._module is hf.model.embed_tokens


def test_token_embeddings_enter_the_first_layer_unchanged():
    hf, tokenizer = build_tiny("llama")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        embeddings = model.token_embeddings.save()
        first_input = model.layers_input[0].save()
    assert torch.equal(embeddings, first_input)
