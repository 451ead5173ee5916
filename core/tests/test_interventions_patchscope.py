"""patchscope_lens / patchscope_generate and target prompts, on tiny models of every family."""

from __future__ import annotations

import pytest
import torch
from interventions_support import count_forwards, encode, family_params, hf_forward, is_moe, standard_module, tiny_model

from nnrosetta import InvalidInputError, LayerIndexError, ShapeError
from nnrosetta.interventions import (
    TargetPrompt,
    TargetPromptBatch,
    patchscope_generate,
    patchscope_lens,
    repeat_prompt,
    run_with_cache,
)

PROMPT = "The capital of France is"
SOURCES = ["The cat sat on the mat", "Water boils at one hundred"]


@pytest.fixture(params=family_params())
def model(request):
    return tiny_model(request.param)


def clean_probs(model, prompt: str) -> torch.Tensor:
    logits, _ = hf_forward(model, encode(model, [prompt]))
    return logits[0, -1].softmax(-1)


def test_patching_a_state_into_the_identical_prompt_changes_nothing(model):
    expected = clean_probs(model, PROMPT)
    with count_forwards(model) as forwards:
        probs = patchscope_lens(model, [PROMPT], TargetPrompt(PROMPT, -1), batch_size=1)
    assert len(forwards) == 1 + model.num_layers  # the source run, then one target run per layer
    assert probs.shape == (1, model.num_layers, model.vocab_size)
    for layer in range(model.num_layers):
        assert torch.equal(probs[0, layer], expected), f"layer {layer}"
    with count_forwards(model) as forwards:
        stacked = patchscope_lens(model, [PROMPT], TargetPrompt(PROMPT, -1))
    assert len(forwards) == 2  # all layers share one target pass
    if is_moe(model):  # experts see a bigger token group, which changes rounding only
        assert torch.allclose(stacked, probs, atol=1e-6)
    else:
        assert torch.equal(stacked, probs)


def test_latents_at_an_inner_token_round_trip(model):
    """A latent read at token 2 and patched back at token 2 of the same prompt changes nothing."""
    cache = run_with_cache(model, [PROMPT], names="layers_output")
    latents = torch.stack([cache["layers_output", layer][0, 2] for layer in range(model.num_layers)]).unsqueeze(0)
    probs = patchscope_lens(model, target_patch_prompts=TargetPrompt(PROMPT, 2), latents=latents, batch_size=1)
    expected = clean_probs(model, PROMPT)
    assert all(torch.equal(probs[0, layer], expected) for layer in range(model.num_layers))


def test_each_layer_matches_a_hooked_forward(model):
    """The result at layer l is the target run with layer l's output at the patched token replaced."""
    target = repeat_prompt()
    probs = patchscope_lens(model, SOURCES, target, batch_size=1)
    assert probs.shape == (2, model.num_layers, model.vocab_size)
    sources = encode(model, SOURCES)
    modules = {str(i): standard_module(model, "layers", i) for i in range(model.num_layers)}
    _, source_states = hf_forward(model, sources, capture=modules)
    targets = encode(model, [target.prompt] * 2)
    for layer in range(model.num_layers):

        def patch(hidden, layer=layer):
            hidden = hidden.clone()
            hidden[:, -1] = source_states[str(layer)][:, -1]
            return hidden

        logits, _ = hf_forward(model, targets, replace=(modules[str(layer)], patch))
        assert torch.equal(probs[:, layer], logits[:, -1].softmax(-1)), f"layer {layer}"
    assert not torch.equal(probs[0], probs[1])


def test_target_prompt_batch_maps_indices_through_left_padding():
    model = tiny_model("llama")
    batch = TargetPromptBatch.from_prompts(["The cat", PROMPT], [0, -2])
    encoding, positions = batch.encode(model)
    lengths = encoding["attention_mask"].sum(-1).tolist()
    width = encoding["input_ids"].shape[1]
    assert positions.tolist() == [width - lengths[0], width - 2]
    assert encoding["attention_mask"][0, positions[0]] == 1 and encoding["attention_mask"][0, positions[0] - 1] == 0
    assert len(TargetPromptBatch.from_target_prompt(TargetPrompt("a b"), 3)) == 3
    assert TargetPromptBatch.from_target_prompts([TargetPrompt("a", 0), TargetPrompt("b c", 1)]).index_to_patch == (0, 1)


def test_repeat_prompt():
    assert repeat_prompt() == TargetPrompt("cat cat\n1135 1135\nhello hello\n?", -1)
    assert repeat_prompt(["a", "b"], relation=" -> ", separator="; ", placeholder="x") == TargetPrompt("a -> a; b -> b; x", -1)


def test_generate_identity_and_effect(model):
    plain = []
    with torch.no_grad(), model.generate(encode(model, [PROMPT]), max_new_tokens=4, do_sample=False,
                                         pad_token_id=model.tokenizer.pad_token_id) as tracer:
        plain.append(tracer.result.save())
    expected = model.tokenizer.batch_decode(plain[0][:, -4:], skip_special_tokens=True)
    assert patchscope_generate(model, [PROMPT], TargetPrompt(PROMPT), layer=0, max_new_tokens=4) == expected
    latents = 50 * torch.randn(1, model.hidden_size, generator=torch.Generator().manual_seed(0))
    changed = patchscope_generate(model, target_patch_prompts=TargetPrompt(PROMPT), latents=latents, layer=0, max_new_tokens=4)
    assert len(changed) == 1 and changed != expected


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        ({"source_prompts": SOURCES, "target_patch_prompts": [TargetPrompt("a")] * 3}, InvalidInputError, "3 target prompts were given for 2"),
        ({"source_prompts": []}, InvalidInputError, "empty"),
        ({"latents": torch.zeros(2, 7)}, ShapeError, "hidden_size=32"),
        ({"latents": torch.zeros(2, 3, 32), "layers": [0, 1]}, ShapeError, "3 layers"),
        ({"source_prompts": SOURCES, "latents": torch.zeros(2, 32)}, InvalidInputError, "exactly one"),
        ({"source_prompts": SOURCES, "layers": 2}, LayerIndexError, "num_layers=2"),
        ({"source_prompts": SOURCES, "target_patch_prompts": TargetPrompt("The cat", 5)}, LayerIndexError, "index_to_patch=5"),
        ({"source_prompts": SOURCES, "batch_size": 0}, InvalidInputError, "batch_size"),
    ],
)
def test_bad_input_fails_before_any_forward(arguments, error, words):
    model = tiny_model("llama")
    with count_forwards(model) as forwards, pytest.raises(error, match=words):
        patchscope_lens(model, **arguments)
    assert forwards == []


def test_generate_bad_input_fails_before_any_forward():
    model = tiny_model("llama")
    with count_forwards(model) as forwards:
        with pytest.raises(ShapeError, match="hidden_size"):
            patchscope_generate(model, latents=torch.zeros(1, 5))
        with pytest.raises(InvalidInputError, match="max_new_tokens"):
            patchscope_generate(model, SOURCES[:1], max_new_tokens=0)
    assert forwards == []
