"""XGLM and BioGPT choices: what `token_embeddings` is, and how positions join it.

Both scale the looked-up token rows by sqrt(hidden_size) inside the embedding module
and add positions after it (XGLM fixed sinusoids, BioGPT a learned table, both at
row ``position + 2``). These tests pin that `token_embeddings` is the scaled token
part alone: not the unscaled lookup, not the first layer's input (as it is in
families without added positions), and that a write to it reaches the first layer
with the positions still added on top.
"""

from __future__ import annotations

import math

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny
from nnrosetta_xglm import MODEL_TYPES

PROMPT = "The cat sat on the mat and the dog slept by the door"
#: fairseq offsets every position by 2 (rows 0 and 1 were its padding slots).
POSITION_OFFSET = 2


def _decoder(hf):
    return hf.biogpt if hf.config.model_type == "biogpt" else hf.model


def _position_table(hf) -> torch.Tensor:
    positions = _decoder(hf).embed_positions
    return positions.weight if hf.config.model_type == "biogpt" else positions.weights


def _sinusoids(rows: int, width: int) -> torch.Tensor:
    """The tensor2tensor sinusoid table fairseq uses: [sin | cos] over half the width each."""
    half = width // 2
    step = math.log(10000) / (half - 1)
    frequencies = torch.exp(torch.arange(half, dtype=torch.float) * -step)
    angles = torch.arange(rows, dtype=torch.float).unsqueeze(1) * frequencies.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


@pytest.fixture(scope="module", params=MODEL_TYPES)
def loaded(request):
    hf, tokenizer = build_tiny(request.param)
    return hf, tokenizer, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_token_embeddings_are_the_scaled_token_rows_and_positions_are_added_after_them(loaded):
    hf, tokenizer, model = loaded
    assert hf.config.scale_embedding
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    saved = {}
    with torch.no_grad(), model.trace(ids):
        saved["embeddings"] = model.token_embeddings.save()
        saved["first_input"] = model.layers_input[0].save()
    table = _decoder(hf).embed_tokens.weight.detach()
    assert torch.equal(saved["embeddings"], table[ids] * math.sqrt(model.hidden_size))
    assert not torch.allclose(saved["embeddings"], table[ids])
    rows = torch.arange(ids.shape[1]) + POSITION_OFFSET
    positions = _position_table(hf).detach()[rows].unsqueeze(0)
    assert torch.equal(saved["first_input"], saved["embeddings"] + positions)
    assert not torch.allclose(saved["first_input"], saved["embeddings"])


def test_xglm_positions_are_fixed_sinusoids_and_biogpt_positions_are_learned(loaded):
    hf, _, _ = loaded
    positions = _decoder(hf).embed_positions
    table = _position_table(hf).detach()
    if hf.config.model_type == "xglm":
        assert not list(positions.parameters())
        # Every row a position can use (from the offset on) is the sinusoid; the zeroed padding row is below it.
        assert positions.padding_idx < POSITION_OFFSET
        expected = _sinusoids(table.shape[0], table.shape[1])
        assert torch.allclose(table[POSITION_OFFSET:], expected[POSITION_OFFSET:], rtol=0, atol=1e-5)
    else:
        assert [name for name, _ in positions.named_parameters()] == ["weight"]


def test_a_write_to_token_embeddings_reaches_the_first_layer_with_positions_added(loaded):
    hf, tokenizer, model = loaded
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    replacement = torch.randn(1, ids.shape[1], model.hidden_size, generator=torch.Generator().manual_seed(0))
    saved = {}
    with torch.no_grad(), model.trace(ids):
        model.token_embeddings = replacement
        saved["first_input"] = model.layers_input[0].save()
    rows = torch.arange(ids.shape[1]) + POSITION_OFFSET
    positions = _position_table(hf).detach()[rows].unsqueeze(0)
    assert torch.equal(saved["first_input"], replacement + positions)


def test_xglm_heads_are_its_flattened_bmm_operands_per_head_with_scaled_queries():
    """queries/keys/values are q_proj * scaling, k_proj, v_proj split per head (not a view of a fused tensor)."""
    hf, tokenizer = build_tiny("xglm")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace([PROMPT, "Hi"]):
        attention_input = model.attentions_input[0].save()
        queries, keys, values = (model.queries[0].save(), model.keys[0].save(), model.values[0].save())
    attention = hf.model.layers[0].self_attn
    heads, head_dim = model.num_heads, model.head_dim

    def per_head(flat: torch.Tensor) -> torch.Tensor:
        return flat.view(*flat.shape[:2], heads, head_dim).transpose(1, 2)

    with torch.no_grad():
        assert torch.equal(queries, per_head(attention.q_proj(attention_input) * attention.scaling))
        assert torch.equal(keys, per_head(attention.k_proj(attention_input)))
        assert torch.equal(values, per_head(attention.v_proj(attention_input)))
        assert not torch.equal(queries, per_head(attention.q_proj(attention_input)))
