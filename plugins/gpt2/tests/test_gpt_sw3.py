"""GPT-SW3 is GPT-2's model under another tokenizer: a saved one reads model_type "gpt2" and is served as GPT-2."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM

from nnrosetta import StandardizedTransformer
from nnrosetta.tiny import save_tiny


def test_a_saved_gpt_sw3_is_a_gpt2_folder_served_by_the_gpt2_adapter(tmp_path):
    folder = save_tiny("gpt-sw3", tmp_path)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gpt2"
    model = StandardizedTransformer(str(folder))
    assert model.adapter.name == "gpt2" and model.adapter.model_type == "gpt2"
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), model.trace(ids):
        logits = model.logits.save()
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(folder).eval()(ids).logits
    assert torch.equal(logits, plain)
