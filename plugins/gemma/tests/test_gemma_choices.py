"""Gemma family choices: soft-capped final projection, scaled embeddings, sandwich norms, sliding layers.

Each test can fail: the naive projection is shown to differ where a cap is set, the
unscaled embedding is shown to differ from `token_embeddings`, and an edit beyond the
sliding window is shown to reach the global layer but not the sliding one.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer, default_registry
from nnrosetta_conformance.tiny import build_tiny
from nnrosetta_gemma import MODEL_TYPES

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris"]
SANDWICH_TYPES = ("gemma2", "gemma3_text")
#: Types whose tiny config soft-caps the logits (cap 0.5).
CAPPED_TYPES = ("gemma2", "gemma3_text", "vaultgemma", "gemma4_text", "gemma4", "gemma4_unified_text", "gemma4_unified")
#: Types whose tiny model alternates a 4-token sliding layer and a global one.
SLIDING_TYPES = ("gemma2", "gemma3_text", "vaultgemma")
ALL_TYPES = MODEL_TYPES


def _decoder(hf):
    """The HuggingFace decoder: the model itself, or the image-text model's language model."""
    return getattr(hf.model, "language_model", hf.model)


@pytest.fixture(scope="module", params=ALL_TYPES)
def loaded(request):
    hf, tokenizer = build_tiny(request.param)
    return request.param, hf, tokenizer, StandardizedTransformer(hf, tokenizer=tokenizer)


def test_project_on_vocab_of_the_last_layer_is_the_models_logits(loaded):
    model_type, hf, _, model = loaded
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        last = model.layers_output[-1]
        saved["projected"] = model.project_on_vocab(last).save()
        saved["naive"] = model.lm_head(model.ln_final(last)).save()
        saved["logits"] = model.logits.save()
    assert torch.equal(saved["projected"], saved["logits"])
    # Gemma 4's image-text forward reads the cap from its text config; the others' text config is the config.
    cap = getattr(hf.config.get_text_config(), "final_logit_softcapping", None)
    if model_type in CAPPED_TYPES:
        # The naive projection is not the model's distribution; the cap is what separates them.
        assert cap == 0.5
        assert torch.equal(saved["logits"], torch.tanh(saved["naive"] / cap) * cap)
        assert (saved["naive"] - saved["logits"]).abs().max() > 0.05
    else:
        assert cap is None
        assert torch.equal(saved["naive"], saved["logits"])


def test_token_embeddings_are_scaled_by_sqrt_hidden_as_the_first_layer_reads_them(loaded):
    _, hf, tokenizer, model = loaded
    ids = tokenizer(PROMPTS[:1], return_tensors="pt").input_ids
    saved = {}
    with torch.no_grad(), model.trace(ids):
        saved["embeddings"] = model.token_embeddings.save()
        saved["first_input"] = model.layers_input[0].save()
    table = _decoder(hf).embed_tokens.weight.detach()
    scale = torch.tensor(model.hidden_size**0.5).to(table.dtype)
    assert torch.equal(saved["embeddings"], table[ids] * scale)
    assert torch.equal(saved["embeddings"], saved["first_input"])
    assert not torch.allclose(saved["embeddings"], table[ids])


@pytest.mark.parametrize("model_type", SANDWICH_TYPES)
def test_mlp_and_attention_accessors_sit_inside_the_sandwich_norms(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = {
                "layer_in": model.layers_input[layer].save(),
                "attention": model.attentions_output[layer].save(),
                "mlp_in": model.mlps_input[layer].save(),
                "mlp_out": model.mlps_output[layer].save(),
                "layer_out": model.layers_output[layer].save(),
            }
    for layer, seen in saved.items():  # layer 0 is sliding, layer 1 global
        block = hf.model.layers[layer]
        with torch.no_grad():
            middle = seen["layer_in"] + block.post_attention_layernorm(seen["attention"])
            assert torch.equal(seen["mlp_in"], block.pre_feedforward_layernorm(middle))
            assert torch.equal(seen["mlp_out"], block.mlp(seen["mlp_in"]))
            assert torch.equal(seen["layer_out"], middle + block.post_feedforward_layernorm(seen["mlp_out"]))
            # The accessors are the raw module outputs, not the post-normed ones.
            assert not torch.equal(seen["mlp_out"], block.post_feedforward_layernorm(seen["mlp_out"]))
            assert not torch.equal(seen["attention"], block.post_attention_layernorm(seen["attention"]))


@pytest.mark.parametrize("model_type", SLIDING_TYPES)
def test_sliding_layer_ignores_a_token_beyond_its_window_and_the_global_layer_does_not(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    ids = tokenizer(PROMPTS[:1], return_tensors="pt").input_ids
    window = hf.config.sliding_window
    assert ids.shape[1] > window + 1
    assert hf.config.layer_types == ["sliding_attention", "full_attention"]
    for layer, kind in enumerate(hf.config.layer_types):
        saved = {}
        with torch.no_grad(), model.trace(ids):
            saved["before"] = model.attentions_output[layer].save()
        with torch.no_grad(), model.trace(ids):
            edited = model.attentions_input[layer].clone()
            edited[:, 0] += 1.0
            model.attentions_input[layer] = edited
            saved["after"] = model.attentions_output[layer].save()
        last_changed = not torch.equal(saved["before"][:, -1], saved["after"][:, -1])
        first_changed = not torch.equal(saved["before"][:, 0], saved["after"][:, 0])
        assert first_changed, f"layer {layer}: the edit must reach the edited position"
        assert last_changed == (kind == "full_attention"), f"layer {layer} ({kind})"


def test_vaultgemma_adds_its_sublayer_outputs_without_post_norms():
    hf, tokenizer = build_tiny("vaultgemma")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = [model.layers_input[layer].save(), model.attentions_output[layer].save(),
                            model.mlps_input[layer].save(), model.mlps_output[layer].save(),
                            model.layers_output[layer].save()]
    for layer, (layer_in, attention, mlp_in, mlp_out, layer_out) in saved.items():
        block = hf.model.layers[layer]
        assert not hasattr(block, "post_attention_layernorm")
        with torch.no_grad():
            assert torch.equal(mlp_in, block.pre_feedforward_layernorm(layer_in + attention))
        assert torch.equal(layer_out, layer_in + attention + mlp_out)


def test_gemma4_layers_add_a_per_layer_input_branch_after_the_mlp():
    hf, tokenizer = build_tiny("gemma4_text")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = {
                "per_layer_input": model.layers[layer].inputs[0][1].save(),  # passed positionally
                "layer_in": model.layers_input[layer].save(),
                "attention": model.attentions_output[layer].save(),
                "mlp_out": model.mlps_output[layer].save(),
                "layer_out": model.layers_output[layer].save(),
            }
    for layer, seen in saved.items():
        block = hf.model.layers[layer]
        with torch.no_grad():
            middle = seen["layer_in"] + block.post_attention_layernorm(seen["attention"])
            after_mlp = middle + block.post_feedforward_layernorm(seen["mlp_out"])
            gate = block.act_fn(block.per_layer_input_gate(after_mlp)) * seen["per_layer_input"]
            branch = block.post_per_layer_input_norm(block.per_layer_projection(gate))
            expected = (after_mlp + branch) * block.layer_scalar
        assert torch.equal(seen["layer_out"], expected)
        # The branch is what the declared sandwich residual leaves out.
        assert (seen["layer_out"] - after_mlp).abs().max() > 1e-3


def test_gemma4_kv_shared_layer_reads_other_tokens_only_through_an_earlier_layers_keys():
    hf, tokenizer = build_tiny("gemma4_text")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    shared = hf.config.num_hidden_layers - hf.config.num_kv_shared_layers
    assert shared == 2 and not hasattr(hf.model.layers[shared].self_attn, "k_proj")
    ids = tokenizer(PROMPTS[:1], return_tensors="pt").input_ids
    saved = {}
    for edited_layer in (shared - 1, shared):
        with torch.no_grad(), model.trace(ids):
            clean = model.attentions_output[shared].save()
        with torch.no_grad(), model.trace(ids):
            # Edit the attention input of one layer at token 0; no other stream changes there.
            value = model.attentions_input[edited_layer].clone()
            value[:, 0] += 1.0
            model.attentions_input[edited_layer] = value
            edited = model.attentions_output[shared].save()
        saved[edited_layer] = (edited - clean)[:, 1:].abs().max()
    assert saved[shared] == 0
    assert saved[shared - 1] > 0


def test_gemma4_kv_sources_follow_the_last_storing_layer_of_each_type_and_the_suite_proves_them():
    """Five layers, two kv-shared ones of different types: each reads the last earlier layer of its type."""
    from nnrosetta_conformance import run
    from nnrosetta_gemma import gemma4_kv_sources

    sliding, full = "sliding_attention", "full_attention"
    hf, tokenizer = build_tiny("gemma4_text", overrides={
        "num_hidden_layers": 5,
        "layer_types": [sliding, full, sliding, sliding, full],
        "per_layer_config": {"01": {"head_dim": 16}, "04": {"head_dim": 16}},
        "num_kv_shared_layers": 2,
    })
    assert gemma4_kv_sources(hf.config) == {3: 2, 4: 1}
    report = run(StandardizedTransformer(hf, tokenizer=tokenizer), checks=["sublayer_locality", "sizes"])
    assert [(r.name, r.status) for r in report.results] == [("sublayer_locality", "passed"), ("sizes", "passed")], [
        r.message for r in report.results
    ]


def test_gemma4_head_dim_differs_by_layer_and_the_model_says_so_by_layer():
    from nnrosetta import CapabilityError

    model = StandardizedTransformer("tiny:gemma4_text")
    assert (model.num_heads, model.num_kv_heads) == (4, 2)
    assert [model.adapter.config_keys.layer_sizes(model.config, i)["head_dim"] for i in range(3)] == [8, 16, 16]
    with pytest.raises(CapabilityError, match=r"`head_dim` differs between the layers.*\{0: 8, 1: 16, 2: 16\}.*layer_sizes"):
        model.head_dim


def test_gemma4_skipping_a_layer_whose_keys_a_later_layer_reads_keeps_those_keys(tmp_path):
    """Four layers, the last two kv-shared: layer 0 is layer 2's kv source, and skip_layers(0, 0) still runs.

    A skipped kv source is run (its keys and values stored) and only its hidden output replaced; a
    skipped layer that did not run would leave layer 2 nothing to attend over (a KeyError in HF).
    Saved and loaded by path, as a checkpoint is.
    """
    from nnrosetta_conformance import run
    from nnrosetta_gemma import gemma4_kv_sources

    from nnrosetta.tiny import save_tiny

    sliding, full = "sliding_attention", "full_attention"
    folder = save_tiny("gemma4_text", tmp_path / "gemma4_text", overrides={
        "num_hidden_layers": 4,
        "layer_types": [sliding, full, sliding, full],
        "per_layer_config": {"01": {"head_dim": 16}, "03": {"head_dim": 16}},
        "num_kv_shared_layers": 2,
        "tie_word_embeddings": True,
    })
    model = StandardizedTransformer(str(folder))
    assert gemma4_kv_sources(model.config) == {2: 0, 3: 1}
    report = run(model, checks=["skip_layers", "fidelity", "sublayer_locality"])
    assert {r.name: r.status for r in report.results} == {
        "skip_layers": "passed", "fidelity": "passed", "sublayer_locality": "passed"
    }, [r.message for r in report.results]
