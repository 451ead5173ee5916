"""Gemma 3's composite config: the language model's sizes are read from its text config first.

The top level of a composite config can hold attributes of the same names (copies made
when it was built, or another part's); the causal LM is built from the text config.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from nnrosetta import StandardizedTransformer
from nnrosetta.tiny import build_tokenizer, randomize_constant_parameters, tiny_config
from nnrosetta_conformance import runner


def _saved_with_text_config(folder, **text_values):
    config = tiny_config("gemma3")
    text = config.get_text_config()
    assert text is not config
    stale = {key: getattr(config, key, None) for key in text_values}
    for key, value in text_values.items():
        setattr(text, key, value)
    if "num_hidden_layers" in text_values:
        text.layer_types = (list(text.layer_types) * text_values["num_hidden_layers"])[: text_values["num_hidden_layers"]]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    randomize_constant_parameters(model)
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return stale


def test_kv_heads_and_layers_come_from_the_text_config(tmp_path):
    stale = _saved_with_text_config(tmp_path / "m", num_key_value_heads=1, num_hidden_layers=4)
    model = StandardizedTransformer(str(tmp_path / "m"))  # the load-time validation counts 4 layers
    assert stale["num_hidden_layers"] not in (None, 4)  # the top level still says otherwise
    assert (model.num_layers, model.num_kv_heads) == (4, 1)
    report = runner.run(str(tmp_path / "m"), ["sizes", "heads", "accessor_shapes"])
    assert [(r.name, r.message) for r in report.failures] == []
