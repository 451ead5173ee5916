"""Tiny models built differently from the adapter's tiny config, saved and loaded by path.

Checkpoints pick their own sizes and routing flags; a type must conform with those too.
"""

from __future__ import annotations

import pytest

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
