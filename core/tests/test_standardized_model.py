"""The standard interface on the core test families: fidelity, shapes, writes, steering, skipping."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import save_tiny

ACCESSORS = (
    "layers_input",
    "attentions_input",
    "attentions_output",
    "mlps_input",
    "mlps_output",
    "layers_output",
)


def run_clean(model: StandardizedTransformer, prompts: list[str]) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    with torch.no_grad(), model.trace(prompts):
        seen["input_ids"] = model.input_ids.save()
        seen["attention_mask"] = model.attention_mask.save()
        seen["token_embeddings"] = model.token_embeddings.save()
        for layer in range(model.num_layers):
            for name in ACCESSORS:
                seen[f"{name}.{layer}"] = getattr(model, name)[layer].save()
        seen["logits"] = model.logits.save()
        seen["next_token_probs"] = model.next_token_probs.save()
    return seen


def test_logits_bit_identical_to_huggingface_on_left_padded_batch(tiny, standardized, prompts, hf_reference_logits):
    seen = run_clean(standardized, prompts)
    mask = seen["attention_mask"]
    assert (mask[:, 0] == 0).any(), "the batch must be left-padded for this test to mean anything"
    expected = hf_reference_logits(tiny[0], seen["input_ids"], mask)
    assert torch.equal(seen["logits"], expected)


def test_every_accessor_has_the_standard_shape(standardized, prompts):
    seen = run_clean(standardized, prompts)
    batch, seq = seen["input_ids"].shape
    hidden = (batch, seq, standardized.hidden_size)
    assert seen["token_embeddings"].shape == hidden
    for layer in range(standardized.num_layers):
        for name in ACCESSORS:
            assert seen[f"{name}.{layer}"].shape == hidden, f"{name}[{layer}]"
    assert seen["logits"].shape == (batch, seq, standardized.vocab_size)
    assert seen["next_token_probs"].shape == (batch, standardized.vocab_size)
    assert torch.allclose(seen["next_token_probs"].sum(-1), torch.ones(batch))


def test_residual_stream_chains_between_layers(standardized, prompts):
    seen = run_clean(standardized, prompts)
    for layer in range(standardized.num_layers - 1):
        assert torch.equal(seen[f"layers_output.{layer}"], seen[f"layers_input.{layer + 1}"])


@pytest.mark.parametrize("name", ACCESSORS)
def test_writing_an_accessor_back_changes_nothing(standardized, prompts, name):
    clean = run_clean(standardized, prompts)["logits"]
    for layer in range(standardized.num_layers):
        with torch.no_grad(), standardized.trace(prompts):
            accessor = getattr(standardized, name)
            accessor[layer] = accessor[layer]
            logits = standardized.logits.save()
        assert torch.equal(logits, clean), f"{name}[{layer}]"


@pytest.mark.parametrize("name", ACCESSORS)
def test_writing_a_changed_value_changes_the_logits(standardized, prompts, name):
    clean = run_clean(standardized, prompts)["logits"]
    with torch.no_grad(), standardized.trace(prompts):
        accessor = getattr(standardized, name)
        accessor[0] = accessor[0] * 3 + 1
        logits = standardized.logits.save()
    assert not torch.allclose(logits, clean)
    # and nothing leaks into the next run
    assert torch.equal(run_clean(standardized, prompts)["logits"], clean)


def test_token_embeddings_write_takes_effect(standardized, prompts):
    clean = run_clean(standardized, prompts)["logits"]
    with torch.no_grad(), standardized.trace(prompts):
        standardized.token_embeddings = standardized.token_embeddings * 0
        logits = standardized.logits.save()
    assert not torch.allclose(logits, clean)


def test_zero_steering_is_the_identity(standardized, prompts):
    clean = run_clean(standardized, prompts)["logits"]
    with torch.no_grad(), standardized.trace(prompts):
        standardized.steer(list(range(standardized.num_layers)), torch.zeros(standardized.hidden_size))
        logits = standardized.logits.save()
    assert torch.equal(logits, clean)


def test_steering_adds_the_vector_where_asked(standardized, prompts):
    vector = torch.randn(standardized.hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), standardized.trace(prompts):
        before = standardized.layers_output[0].clone().save()
        standardized.steer(0, vector, factor=2.0, token_positions=[-1], batch_index=1)
        after = standardized.layers_output[0].save()
    expected = before.clone()
    expected[1, -1] += 2.0 * vector
    assert torch.equal(after, expected)


def test_skip_layers_passes_the_input_through(standardized, prompts):
    last = standardized.num_layers - 1
    with torch.no_grad(), standardized.trace(prompts):
        entering = standardized.layers_input[0].save()
        standardized.skip_layers(0, last)
        leaving = standardized.layers_output[last].save()
    assert torch.equal(entering, leaving)


def test_project_on_vocab_of_last_layer_gives_the_logits(standardized, prompts):
    seen = run_clean(standardized, prompts)
    with torch.no_grad():
        projected = standardized.project_on_vocab(seen[f"layers_output.{standardized.num_layers - 1}"])
    assert torch.allclose(projected, seen["logits"], atol=1e-5)
    top = standardized.get_topk_closest_tokens(seen[f"layers_output.{standardized.num_layers - 1}"][:, -1], k=3)
    assert torch.equal(top.indices[:, 0], seen["logits"][:, -1].argmax(-1))


def test_loading_by_path_alone_behaves_like_the_object(model_type, standardized, prompts, tmp_path):
    folder = save_tiny(model_type, tmp_path / model_type)
    by_path = StandardizedTransformer(str(folder))
    assert by_path.adapter == standardized.adapter
    assert torch.equal(run_clean(by_path, prompts)["logits"], run_clean(standardized, prompts)["logits"])
