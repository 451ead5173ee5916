"""Gemma 4's assistants (drafters fed by the target model) are refused at load, the reason saying why."""

from __future__ import annotations

import json

import pytest

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta_gemma import ASSISTANT_REASON

TINY_TEXT = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 16, "global_head_dim": 16, "vocab_size": 64,
    "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4,
    "hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 0,
}

ASSISTANTS = {
    "gemma4_assistant": ("Gemma4AssistantConfig", "Gemma4AssistantForCausalLM", "gemma4_text"),
    "gemma4_unified_assistant": ("Gemma4UnifiedAssistantConfig", "Gemma4UnifiedAssistantForCausalLM", "gemma4_unified_text"),
}


@pytest.mark.parametrize("model_type", sorted(ASSISTANTS))
def test_a_saved_assistant_is_refused_at_load_because_it_runs_on_the_target_models_state(model_type, tmp_path):
    import torch
    import transformers

    config_class, model_class, text_type = ASSISTANTS[model_type]
    config = getattr(transformers, config_class)(text_config={"model_type": text_type, **TINY_TEXT}, backbone_hidden_size=48)
    model = getattr(transformers, model_class)(config)
    # What the reason states: no layer computes its own keys, and input ids alone do not run it.
    assert not any(hasattr(layer.self_attn, "k_proj") for layer in model.model.layers)
    with pytest.raises(ValueError, match="inputs_embeds and shared_kv_states"):
        model(input_ids=torch.tensor([[1, 2, 3]]))
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model_type
    with pytest.raises(UnsupportedArchitectureError, match="shared_kv_states") as refused:
        StandardizedTransformer(str(tmp_path))
    assert ASSISTANT_REASON in str(refused.value)
