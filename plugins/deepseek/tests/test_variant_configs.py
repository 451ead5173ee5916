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


#: Latent attention's query/key head size is qk_nope + qk_rope, as the forward adds them: a saved config's
#: qk_head_dim can be stale, and glm4_moe_lite's head_dim is an alias of qk_rope_head_dim.
LATENT_HEAD_SIZES = [
    ("deepseek_v3", {"qk_head_dim": 99}),
    ("glm4_moe_lite", {"head_dim": 8}),
    ("axk2", {"qk_head_dim": 99}),
]


def test_latent_head_size_is_what_the_forward_computes(tmp_path):
    for model_type, overrides in LATENT_HEAD_SIZES:
        checks = ["sizes", "accessor_shapes", "attention_probabilities"]
        assert _failures(model_type, tmp_path / model_type, overrides, checks) == [], model_type
