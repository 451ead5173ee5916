"""Tiny models built from the config class's own defaults, saved and loaded by path."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from nnrosetta.tiny import build_tokenizer, randomize_constant_parameters, tiny_config
from nnrosetta_conformance import runner


def _without_norm_topk_prob(model_type: str):
    """The tiny config with no norm_topk_prob anywhere, as the Qwen3.5-MoE config classes write it."""
    values = tiny_config(model_type).to_dict()
    for part in (values, values.get("text_config") or {}):
        part.pop("norm_topk_prob", None)
    for key in ("model_type", "transformers_version", "architectures"):
        values.pop(key, None)
    return AutoConfig.for_model(model_type, **values)


@pytest.mark.parametrize("model_type", ["qwen3_5_moe_text", "qwen3_5_moe"])
def test_qwen3_5_moe_renormalises_without_a_config_flag(model_type, tmp_path):
    config = _without_norm_topk_prob(model_type)
    assert not hasattr(config.get_text_config(), "norm_topk_prob")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    randomize_constant_parameters(model)
    model.save_pretrained(tmp_path)
    build_tokenizer().save_pretrained(tmp_path)
    report = runner.run(str(tmp_path), ["moe_routing", "fidelity"])
    assert [(r.name, r.message) for r in report.results if not r.ok] == []
