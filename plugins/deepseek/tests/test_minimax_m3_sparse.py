"""MiniMax-M3's block-sparse layers are refused; the fact behind the refusal is pinned on plain HuggingFace.

The lightning indexer anchors key blocks at absolute cache slots while the query's own
block and the causal cut come from position_ids. On a left-padded batch (what nnsight
passes) a real query can be left with no key: HuggingFace's eager softmax then spreads it
over every key, later ones too. If a transformers release fixes that, the second test
fails, and the refusal can give way to a declaration.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import RefusedConfigError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

#: Layer 1 block-sparse: 2-key blocks, the best 2 per query.
SPARSE = {"layer_types": ["full_attention", "minimax_m3_sparse"], "index_n_heads": 2, "index_head_dim": 8,
          "index_block_size": 2, "index_topk_blocks": 2, "index_local_blocks": 1}


def test_a_config_with_sparse_layers_is_refused_naming_them():
    hf, tokenizer = build_tiny("minimax_m3_vl_text", overrides=SPARSE)
    with pytest.raises(RefusedConfigError, match=r"layers \[1\] are minimax_m3_sparse"):
        StandardizedTransformer(hf, tokenizer=tokenizer)


def test_left_padding_makes_the_sparse_layer_attend_later_keys_in_plain_huggingface():
    hf, _ = build_tiny("minimax_m3_vl_text", overrides=SPARSE, attn_implementation="eager")
    ids = torch.tensor([[3, 3, 3, 10, 11, 12, 13, 14, 15], [20, 21, 22, 23, 24, 25, 26, 27, 28]])
    mask = (ids != 3).long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        attentions = hf(ids, attention_mask=mask, position_ids=positions, output_attentions=True).attentions
    later = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
    real = mask.bool()

    def weight_on_later_keys(layer: int, row: int) -> torch.Tensor:
        """What the row's real queries give keys after them, every head."""
        return attentions[layer][row][:, real[row]][:, later[real[row]]]

    # The full-attention layer and the unpadded row stay causal; the padded row's sparse layer does not.
    assert torch.equal(weight_on_later_keys(0, 0), torch.zeros_like(weight_on_later_keys(0, 0)))
    assert torch.equal(weight_on_later_keys(1, 1), torch.zeros_like(weight_on_later_keys(1, 1)))
    assert bool((weight_on_later_keys(1, 0) > 0).any())
