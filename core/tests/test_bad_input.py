"""Bad input gets a clear error, and a failed trace leaves the model exactly as it was."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from nnrosetta import (
    AccessorAssignmentError,
    Adapter,
    ConfigKeys,
    LayerIndexError,
    RenamingError,
    ShapeError,
    StandardizedTransformer,
    UnsupportedArchitectureError,
)
from nnrosetta.errors import NnrosettaError
from nnrosetta_conformance.tiny import build_tiny, build_tokenizer

PROMPTS = ["The capital of France is", "Hi"]


@pytest.fixture(scope="module")
def llama() -> StandardizedTransformer:
    model, tokenizer = build_tiny("llama")
    return StandardizedTransformer(model, tokenizer=tokenizer)


def logits_of(model: StandardizedTransformer) -> torch.Tensor:
    with torch.no_grad(), model.trace(PROMPTS):
        logits = model.logits.save()
    return logits


def test_layer_index_out_of_range_names_num_layers(llama):
    with pytest.raises(IndexError, match=r"layer index 7 is out of range: the model has num_layers=2"):
        with llama.trace(PROMPTS):
            llama.layers_output[7].save()
    with pytest.raises(LayerIndexError, match="num_layers=2"):
        llama.attentions[-3]


def test_steering_vector_of_the_wrong_size_gives_both_sizes(llama):
    with pytest.raises(ValueError, match=r"shape \(32,\) \(hidden_size\), got \(31,\)"):
        with llama.trace(PROMPTS):
            llama.steer(0, torch.zeros(31))


def test_writing_the_wrong_shape_is_refused(llama):
    with pytest.raises(ShapeError, match=r"has shape \(2, 8, 32\).*written has shape \(2, 8, 16\)"):
        with llama.trace(PROMPTS):
            llama.mlps_output[0] = torch.zeros(2, 8, 16)


@pytest.mark.parametrize("name", ["layers", "attentions", "mlps"])
def test_assigning_a_module_accessor_is_refused_with_a_hint(llama, name):
    with pytest.raises(AccessorAssignmentError, match=f"{name}_output\\[0\\]"):
        getattr(llama, name)[0] = torch.nn.Identity()


def test_a_failing_trace_leaves_weights_and_later_outputs_unchanged(llama):
    weights = {k: v.clone() for k, v in llama._module.state_dict().items()}
    before = logits_of(llama)
    with pytest.raises(RuntimeError, match="user code failed"):
        with torch.no_grad(), llama.trace(PROMPTS):
            llama.layers_output[0] = llama.layers_output[0] * 100
            llama.steer(1, torch.ones(llama.hidden_size))
            raise RuntimeError("user code failed")
    with pytest.raises(ShapeError):
        with torch.no_grad(), llama.trace(PROMPTS):
            llama.layers_output[0] = llama.layers_output[0] * 100
            llama.mlps_output[1] = torch.zeros(1)
    after = {k: v for k, v in llama._module.state_dict().items()}
    assert weights.keys() == after.keys()
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert torch.equal(logits_of(llama), before)


def test_unsupported_architecture_lists_installed_adapters_and_what_to_do():
    # A registry of its own, so the test holds whatever plugins are installed.
    from nnrosetta import Registry, hookimpl

    class ToyPlugin:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter(name="toy", model_types=("toytype",), rename={"model.layers": "layers"}))

    registry = Registry(autoload=False)
    registry.register_plugin(ToyPlugin(), name="toy-plugin")
    model, tokenizer = build_tiny("gpt2")
    with pytest.raises(UnsupportedArchitectureError) as raised:
        StandardizedTransformer(model, tokenizer=tokenizer, registry=registry)
    message = str(raised.value)
    assert "model_type 'gpt2'" in message and "GPT2LMHeadModel" in message
    assert "toy (toytype) from <run-time>" in message
    assert "pip install ./plugins/<family>" in message and "adapter='<name>'" in message


def test_a_rename_map_that_does_not_fit_raises_renaming_error_naming_module_and_adapter():
    model, tokenizer = build_tiny("gpt2")
    with pytest.raises(RenamingError) as raised:
        StandardizedTransformer(model, tokenizer=tokenizer, adapter="llama")
    message = str(raised.value)
    assert "adapter 'llama' from nnrosetta-llama" in message
    assert "embed_tokens" in message and "layers" in message and "transformer" in message
    # check=False skips the validation; the first use then says what does not fit, by name.
    unchecked = StandardizedTransformer(model, tokenizer=tokenizer, adapter="llama", check=False)
    with pytest.raises(RenamingError, match="adapter 'llama'.*maps no module to `layers`.*transformer"):
        unchecked.num_layers


def test_config_keys_that_read_the_wrong_size_are_caught_at_load():
    model, tokenizer = build_tiny("llama")
    wrong = Adapter(
        name="wrong-size",
        model_types=("llama",),
        rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
        config_keys=ConfigKeys(hidden_size="intermediate_size"),
        plugin="test",
    )
    with pytest.raises(
        RenamingError,
        match=r"adapter 'wrong-size' from test: `attentions_output\[0\]` has shape \(1, 3, 32\).*expected \(1, 3, 64\)",
    ):
        StandardizedTransformer(model, tokenizer=tokenizer, adapter=wrong)


def test_explicit_adapter_wins_over_the_claimed_type():
    model, tokenizer = build_tiny("qwen2")
    custom = Adapter(
        name="custom",
        model_types=("not-qwen2",),
        rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
    )
    assert StandardizedTransformer(model, tokenizer=tokenizer, adapter=custom).adapter.name == "custom"


def test_a_folder_with_no_model_is_a_clear_error(tmp_path):
    with pytest.raises(NnrosettaError, match="could not read a model config"):
        StandardizedTransformer(str(tmp_path))


def test_a_model_object_without_tokenizer_source_is_a_clear_error():
    model, _ = build_tiny("llama")
    with pytest.raises(NnrosettaError, match="pass tokenizer="):
        StandardizedTransformer(model)
