"""A checkpoint that cannot be served as given is refused at load, in one line that names the file or value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta.errors import ModelLoadError
from nnrosetta_conformance.tiny import build_tiny, save_tiny


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return save_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama")


def copy_of(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_weight_file_is_named(saved, tmp_path, damage):
    folder = copy_of(saved, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00not a safetensors file" * 4)
    with pytest.raises(ModelLoadError) as raised:
        StandardizedTransformer(str(folder))
    message = str(raised.value)
    assert message.startswith(f"the weight file {str(weights)!r} cannot be read (Error while deserializing header")
    assert "truncated or corrupt" in message and len(message.splitlines()) == 1


def test_config_sizes_that_disagree_with_the_weights_are_said_in_one_line(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 80
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as raised:
        StandardizedTransformer(str(folder))
    message = str(raised.value)
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "do not have the sizes its config.json gives: model.layers.0.mlp" in message
    assert "is [32, 64] in the checkpoint, the config builds [32, 80] (6 tensors differ)" in message
    assert "ignore_mismatched_sizes=True" in message


@pytest.mark.parametrize("key", ["dtype", "torch_dtype"])
def test_an_unknown_dtype_is_refused_before_loading(saved, key):
    with pytest.raises(ModelLoadError, match=rf"{key}='float17' is not a torch dtype; use one of 'auto', 'float32', 'bfloat16'"):
        StandardizedTransformer(str(saved), **{key: "float17"})


def test_a_named_dtype_still_loads(saved):
    import torch

    model = StandardizedTransformer(str(saved), dtype="bfloat16")
    assert next(model._module.parameters()).dtype == torch.bfloat16


def test_an_moe_adapter_on_a_dense_model_is_refused():
    model, tokenizer = build_tiny("llama")
    with pytest.raises(UnsupportedArchitectureError) as raised:
        StandardizedTransformer(model, tokenizer=tokenizer, adapter="mixtral")
    message = str(raised.value)
    assert message.startswith("adapter 'mixtral' (nnrosetta-mixtral")
    assert "no layer of this 'llama' model has one (layer 0's mlp is LlamaMLP): it is a dense model" in message
    assert "Drop adapter=" in message
