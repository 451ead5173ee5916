"""Llama-family attention choices the per-type head labels must get right.

The tiny configs cover each claimed type's defaults; these are the config
options that move the per-head projections to another `.source` label or skip
rotary embedding, each proven by the conformance checks and by exact values, and
the types whose attention departs from Llama's inside the module (transforms after
rotary, differential attention, a norm before the output projection, a decoder
whose attention implementation differs from its top-level config's).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnrosetta import CapabilityError, Called, Inside, StandardizedTransformer, conventions, default_registry
from nnrosetta.attention import attention_implementation, implementations
from nnrosetta.source_points import reach
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.checks.base import CheckFailure
from nnrosetta_conformance.tiny import build_tiny


def _run_attention_checks(model: StandardizedTransformer) -> None:
    for name in ("attention_probabilities", "heads", "attention_patterns"):
        CHECKS[name].function(model)


def test_stablelm_with_per_head_qk_layernorm():
    hf, tokenizer = build_tiny("stablelm", overrides={"qk_layernorm": True})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    _run_attention_checks(model)
    with torch.no_grad(), model.trace("The cat sat"):
        projected = model.layers[0].self_attn.q_proj.output.save()
        queries = model.queries[0].save()
    per_head = projected.view(1, -1, model.num_heads, model.head_dim).transpose(1, 2)
    normed = hf.model.layers[0].self_attn.q_layernorm(per_head)
    assert torch.equal(queries, normed)


def test_smollm3_layer_without_rotary_serves_unrotated_queries():
    hf, tokenizer = build_tiny("smollm3", overrides={"no_rope_layers": [1, 0]})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    _run_attention_checks(model)
    seen = {}
    with torch.no_grad(), model.trace("The cat sat"):
        for layer in range(2):
            seen[f"queries{layer}"] = model.queries[layer].save()
            seen[f"rotated{layer}"] = model.rotated_queries[layer].save()
    assert not torch.equal(seen["queries0"], seen["rotated0"])
    assert torch.equal(seen["queries1"], seen["rotated1"])


# -- transforms after rotary: queries[i] are the pre-rotary projections --------------------

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Hi"]


def _rotate(model_type: str, attention, queries, keys, inputs):
    """What the family's forward does to pre-rotary queries and keys before the attention call."""
    cos, sin = inputs["position_embeddings"]
    if model_type == "hunyuan_v1_dense":
        from transformers.models.hunyuan_v1_dense.modeling_hunyuan_v1_dense import apply_rotary_pos_emb

        rotated_queries, rotated_keys = apply_rotary_pos_emb(queries, keys, cos, sin)
        return attention.query_layernorm(rotated_queries), attention.key_layernorm(rotated_keys)
    if model_type == "nanochat":
        from transformers.models.nanochat.modeling_nanochat import apply_rotary_pos_emb

        rotated_queries, rotated_keys = apply_rotary_pos_emb(queries, keys, cos, sin)
        return attention.q_norm(rotated_queries), attention.k_norm(rotated_keys)
    from transformers.models.ministral3.modeling_ministral3 import apply_rotary_pos_emb, get_llama_4_attn_scale

    rotated_queries, rotated_keys = apply_rotary_pos_emb(queries, keys, cos, sin)
    rope = attention.config.rope_parameters
    scale = get_llama_4_attn_scale(
        inputs["position_ids"], rope["llama_4_scaling_beta"], rope["original_max_position_embeddings"]
    )
    return rotated_queries * scale.to(rotated_queries.dtype), rotated_keys


@pytest.mark.parametrize("model_type", ["hunyuan_v1_dense", "nanochat", "ministral3"])
def test_queries_and_keys_are_the_values_rotary_and_the_later_transform_receive(model_type):
    """`heads.rotary_output` declares the transform after rotary: queries[i]/keys[i] are what rotary
    receives, rotated_queries[i]/rotated_keys[i] what the attention call receives, value for value."""
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.adapter.heads.rotary_output == conventions.ROTARY_CALL
    seen = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            seen[layer] = {
                "inputs": model.layers[layer].self_attn.inputs[1].save(),
                "queries": model.queries[layer].save(),
                "keys": model.keys[layer].save(),
                "rotated_queries": model.rotated_queries[layer].save(),
                "rotated_keys": model.rotated_keys[layer].save(),
            }
    changed = False
    for layer, values in seen.items():
        attention = hf.model.layers[layer].self_attn
        with torch.no_grad():
            queries, keys = _rotate(model_type, attention, values["queries"], values["keys"], values["inputs"])
        assert torch.equal(queries, values["rotated_queries"])
        assert torch.equal(keys, values["rotated_keys"])
        changed |= not torch.allclose(values["queries"].norm(dim=-1), values["rotated_queries"].norm(dim=-1))
    assert changed, "the transform after rotary must change the head norms on this tiny model"
    _run_attention_checks(model)


@pytest.mark.parametrize("model_type", ["hunyuan_v1_dense", "nanochat", "ministral3"])
def test_the_heads_check_fails_without_the_rotary_output_declaration(model_type):
    hf, tokenizer = build_tiny(model_type)
    adapter = dataclasses.replace(default_registry().resolve(model_type), heads=conventions.HEADS)
    model = StandardizedTransformer(hf, tokenizer=tokenizer, adapter=adapter)
    with pytest.raises(CheckFailure, match=r"norms of its head vectors differ.*declare `heads.rotary_output`"):
        CHECKS["heads"].function(model)


def test_rotary_output_at_another_call_is_caught():
    """Declared at a call that is not rotary (the query norm after it), the check says it is no rotation of the pair."""
    hf, tokenizer = build_tiny("hunyuan_v1_dense")
    adapter = default_registry().resolve("hunyuan_v1_dense")
    wrong = dataclasses.replace(adapter.heads, rotary_output=Called("self.query_layernorm"))
    model = StandardizedTransformer(hf, tokenizer=tokenizer, adapter=dataclasses.replace(adapter, heads=wrong))
    with pytest.raises(CheckFailure, match=r"`heads.rotary_output` \(the first call of `self.query_layernorm\(...\)`\) must be a call receiving"):
        CHECKS["heads"].function(model)


# -- differential attention: one map per head, two calls --------------------------------------


def test_diffllama_serves_the_map_both_calls_compute_and_writes_reach_the_first_call_only():
    hf, tokenizer = build_tiny("diffllama")
    model = StandardizedTransformer(hf, tokenizer=tokenizer, enable_attention_probs=True)
    second_call = Inside(Called("attention_interface", occurrence=1), Called("nn.functional.dropout"))
    call = {index: Called("attention_interface", occurrence=index) for index in (0, 1)}
    seen = {}
    with torch.no_grad(), model.trace(PROMPTS):  # in forward order: call 0, then call 1
        served = model.attention_probabilities[1].save()
        attention = model.layers[1].self_attn
        seen["out0"] = reach(attention, call[0], model.adapter, "test").value[0].save()
        seen["second"] = reach(attention, second_call, model.adapter, "test").value.save()
        seen["out1"] = reach(attention, call[1], model.adapter, "test").value[0].save()
    with torch.no_grad(), model.trace(PROMPTS):
        model.attention_probabilities[1] = torch.zeros_like(model.attention_probabilities[1])
        attention = model.layers[1].self_attn
        for index in (0, 1):
            seen[f"edited{index}"] = reach(attention, call[index], model.adapter, "test").value[0].save()
    assert torch.equal(served, seen["second"])
    assert served.shape[1] == model.num_heads
    assert torch.equal(seen["edited0"], torch.zeros_like(seen["edited0"]))
    assert not torch.equal(seen["out0"], seen["edited0"])
    assert torch.equal(seen["out1"], seen["edited1"])


# -- BitNet: the output projection reads the sub-normed head outputs ---------------------------


def test_bitnet_heads_output_is_the_sub_normed_attention_output():
    hf, tokenizer = build_tiny("bitnet")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        raw = reach(model.layers[0].self_attn, conventions.ATTENTION_CALL, model.adapter, "test").value[0].save()
        served = model.heads_output[0].save()
    batch, seq = raw.shape[:2]
    with torch.no_grad():
        normed = hf.model.layers[0].self_attn.attn_sub_norm(raw.reshape(batch, seq, -1))
    assert torch.equal(served, normed.reshape(batch, seq, model.num_heads, model.head_dim))
    assert not torch.allclose(served, raw)


# -- GOT-OCR2: served once the language model runs eager attention ------------------------------


def test_got_ocr2_decoder_under_sdpa_is_refused_by_name_and_switched_by_the_suite():
    """The top-level config says eager (the vision encoder has no other) while the decoder runs sdpa:
    reading probabilities names the text config's implementation, and the suite's eager switch
    (which reads the text config too) makes the checks compare with HuggingFace's own eager values."""
    hf, tokenizer = build_tiny("got_ocr2")
    assert hf.config._attn_implementation == "eager"
    assert hf.config.get_text_config()._attn_implementation == "sdpa"
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with pytest.raises(CapabilityError, match=r"the language model runs attn_implementation='sdpa' \(its text config\)"):
        with torch.no_grad(), model.trace(PROMPTS):
            model.attention_probabilities[0].save()
    with attention_implementation(model, "eager"):
        assert implementations(hf.config) == ("eager", "eager")
        with torch.no_grad(), model.trace(PROMPTS):
            probabilities = model.attention_probabilities[0].save()
        with torch.no_grad():
            reference = hf(**tokenizer(PROMPTS, return_tensors="pt", padding=True), output_attentions=True)
    assert implementations(hf.config) == ("eager", "sdpa")
    assert reference.attentions is not None and torch.equal(probabilities, reference.attentions[0])
    for name in ("attention_probabilities", "heads", "attention_patterns"):
        CHECKS[name].function(model)
    assert implementations(hf.config) == ("eager", "sdpa")