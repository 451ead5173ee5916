"""Tiny models built differently from the adapter's tiny config, saved and loaded by path.

Checkpoints pick their own sizes and routing flags; a type must conform with those too.
"""

from __future__ import annotations

import pytest

from nnrosetta.errors import RefusedConfigError
from nnrosetta.tiny import save_tiny
from nnrosetta_conformance import runner


def _failures(model_type: str, folder, overrides: dict, checks: list[str]) -> list[tuple[str, str]]:
    save_tiny(model_type, folder, overrides=overrides)
    report = runner.run(str(folder), checks)
    return [(result.name, result.message) for result in report.results if not result.ok]


@pytest.mark.parametrize("model_type", ["olmoe", "qwen3_moe"])
def test_every_expert_chosen_without_renormalising(model_type, tmp_path):
    """k == num_experts: un-renormalised softmax weights sum to 1 too, which is no wrong declaration."""
    overrides = {"num_experts_per_tok": 4, "norm_topk_prob": False}
    assert _failures(model_type, tmp_path / model_type, overrides, ["moe_routing"]) == []


def test_jetmoe_with_more_experts_per_token(tmp_path):
    """JetMoE runs num_key_value_heads * num_experts_per_tok attention heads: 2 * 4 = 8 here."""
    overrides = {"num_experts_per_tok": 4, "num_attention_heads": 8}
    assert _failures("jetmoe", tmp_path / "jetmoe", overrides, ["attention_probabilities", "moe_routing"]) == []


def test_jetmoe_refuses_a_stale_head_count(tmp_path):
    """A saved num_attention_heads that is not num_key_value_heads * num_experts_per_tok is refused."""
    save_tiny("jetmoe", tmp_path, overrides={"num_experts_per_tok": 4, "num_attention_heads": 4})
    with pytest.raises(RefusedConfigError, match=r"num_key_value_heads \* num_experts_per_tok = 2 \* 4 = 8"):
        runner.run(str(tmp_path), ["attention_probabilities"])


@pytest.mark.parametrize("experts_per_token", [1, 3])
def test_phimoe_routes_to_two_experts_whatever_num_experts_per_tok_says(experts_per_token, tmp_path):
    """The sparse mixer ignores k: router_top_k reports the two experts it picks, and the suite agrees."""
    import torch

    from nnrosetta import StandardizedTransformer

    folder = save_tiny("phimoe", tmp_path / "phimoe", overrides={"num_experts_per_tok": experts_per_token})
    model = StandardizedTransformer(str(folder))
    with torch.no_grad(), model.trace(torch.tensor([[5, 6, 7, 8]])):
        chosen = model.router_top_k[0].indices.save()
    assert chosen.shape[-1] == 2
    assert _failures("phimoe", tmp_path / "again", {"num_experts_per_tok": experts_per_token}, ["moe_routing"]) == []
