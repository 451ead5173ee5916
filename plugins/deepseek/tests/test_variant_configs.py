"""Tiny models built differently from the adapter's tiny config, saved and loaded by path."""

from __future__ import annotations

from nnrosetta.tiny import save_tiny
from nnrosetta_conformance import runner


def _failures(model_type: str, folder, overrides: dict, checks: list[str]) -> list[tuple[str, str]]:
    save_tiny(model_type, folder, overrides=overrides)
    report = runner.run(str(folder), checks)
    return [(result.name, result.message) for result in report.results if not result.ok]


def test_every_expert_chosen_scaled_not_renormalised(tmp_path):
    """k == n_routed_experts: the scaled softmax weights sum to the scale without renormalising."""
    overrides = {"num_experts_per_tok": 8, "n_group": 1, "topk_group": 1}
    assert _failures("deepseek_v2", tmp_path / "v2", overrides, ["moe_routing"]) == []
