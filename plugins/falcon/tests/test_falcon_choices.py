"""Falcon-specific choices: the layouts of one model type, their kv heads, per-head splits and residual forms."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig

import nnrosetta_conformance
from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta_conformance.tiny import build_tiny, save_tiny
from nnrosetta_falcon import (
    FALCON,
    FALCON_RW,
    TINY,
    TINY_MULTI_HEAD,
    TINY_NEW_DECODER,
    TINY_NEW_DECODER_ONE_NORM,
    TINY_RW,
)

PROMPTS = ["The capital of France is", "Hi"]
#: The layouts the adapter `falcon` serves besides its tiny default (Falcon-7B multi-query),
#: with the kv heads each must report: the grouped ones from num_kv_heads, all heads without grouping.
LAYOUTS = {
    "new_decoder_architecture": (TINY_NEW_DECODER, 2),
    "new_decoder_architecture, one norm": (TINY_NEW_DECODER_ONE_NORM, 2),
    "multi-head": (TINY_MULTI_HEAD, 4),
}


def _load(overrides: dict, adapter: str | None = None) -> tuple[torch.nn.Module, StandardizedTransformer]:
    hf, tokenizer = build_tiny("falcon", overrides=overrides)
    return hf, StandardizedTransformer(hf, tokenizer=tokenizer, adapter=adapter)


def _unexpected(report, adapter) -> list[tuple[str, str, str]]:
    """Results other than a pass, a skip, or an expected failure of a check the adapter declares broken."""
    allowed = lambda r: r.status in ("passed", "skipped") or (r.status == "xfailed" and r.name in adapter.known_broken)  # noqa: E731
    return [(r.name, r.status, r.message) for r in report.results if not allowed(r)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_passes_the_suite_with_its_kv_heads(layout):
    overrides, kv_heads = LAYOUTS[layout]
    _, model = _load(overrides)
    assert model.adapter.name == "falcon"
    assert (model.num_heads, model.num_kv_heads) == (4, kv_heads)
    assert _unexpected(nnrosetta_conformance.run(model), FALCON) == []


def test_multi_query_reports_one_kv_head_whatever_num_kv_heads_says():
    hf, model = _load({})
    assert hf.config.num_kv_heads == 4  # Falcon-7B's config leaves it at the number of query heads
    assert (model.num_heads, model.num_kv_heads) == (4, 1)


def test_falcon_7b_style_config_loads_from_a_path_with_hf_logits(tmp_path):
    """Falcon-7B's own config (multi_query, num_kv_heads == num_attention_heads) loads as is."""
    folder = save_tiny("falcon", tmp_path / "falcon-7b-style", adapter=FALCON)
    assert AutoConfig.from_pretrained(folder).num_kv_heads == 4
    model = StandardizedTransformer(str(folder))
    assert model.num_kv_heads == 1
    inputs = {}
    with torch.no_grad(), model.trace(PROMPTS):
        inputs["input_ids"], inputs["attention_mask"] = model.input_ids.save(), model.attention_mask.save()
        logits = model.logits.save()
    reference = build_tiny("falcon")[0]
    with torch.no_grad():
        expected = reference(**inputs, position_ids=(inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits
    assert torch.equal(logits, expected)


def _split_by_hand(fused: torch.Tensor, overrides: dict, heads: int, head_dim: int) -> tuple[torch.Tensor, ...]:
    """query_key_value's output split into (batch, heads, seq, head_dim) as each layout lays it out."""
    leading = fused.shape[:-1]
    if overrides.get("new_decoder_architecture"):  # per kv group: its queries, then its key, then its value
        groups = overrides["num_kv_heads"]
        grouped = fused.view(*leading, groups, heads // groups + 2, head_dim)
        query = grouped[..., :-2, :].reshape(*leading, heads, head_dim)
        return query.transpose(1, 2), grouped[..., -2, :].transpose(1, 2), grouped[..., -1, :].transpose(1, 2)
    if overrides["multi_query"]:  # [every query head | the key head | the value head]
        query, key, value = fused.split([heads * head_dim, head_dim, head_dim], dim=-1)
        return tuple(x.reshape(*leading, -1, head_dim).transpose(1, 2) for x in (query, key, value))
    per_head = fused.view(*leading, heads, 3, head_dim).transpose(1, 2)  # each head's q, k, v side by side
    return per_head[..., 0, :], per_head[..., 1, :], per_head[..., 2, :]


HEAD_LAYOUTS = {
    "multi_query": (TINY, None),
    "multi-head": (TINY_MULTI_HEAD, None),
    "new_decoder_architecture": (TINY_NEW_DECODER, None),
    "rw": (TINY_RW, "falcon_rw"),
}


@pytest.mark.parametrize("layout", HEAD_LAYOUTS)
def test_heads_are_query_key_value_split_by_hand_before_rotary(layout):
    overrides, adapter = HEAD_LAYOUTS[layout]
    hf, model = _load(overrides, adapter)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for layer in range(model.num_layers):
            saved[layer] = [model.attentions_input[layer].save()] + [
                getattr(model, name)[layer].save() for name in ("queries", "keys", "values")
            ]
    for layer, (attention_input, queries, keys, values) in saved.items():
        attention = hf.transformer.h[layer].self_attention
        with torch.no_grad():
            fused = attention.query_key_value(attention_input)
            by_hand = _split_by_hand(fused, overrides, model.num_heads, model.head_dim)
            assert [tuple(x.shape[1:2]) for x in by_hand[1:]] == [(model.num_kv_heads,)] * 2
        for seen, expected in zip((queries, keys, values), by_hand):
            assert torch.equal(seen, expected), layer


def test_new_decoder_architecture_keys_are_one_per_group_and_edits_reach_the_logits():
    """Grouped kv heads: keys[i] has num_kv_heads heads (not broadcast), and zeroing one group's key changes the logits."""
    _, model = _load(TINY_NEW_DECODER)
    with torch.no_grad(), model.trace(PROMPTS):
        keys = model.keys[0].save()
        clean = model.logits.save()
    assert keys.shape[1] == model.num_kv_heads == TINY_NEW_DECODER["num_kv_heads"]
    with torch.no_grad(), model.trace(PROMPTS):
        edited = model.keys[0].clone()
        edited[:, 0] = 0
        model.keys[0] = edited
        changed = model.logits.save()
    assert not torch.equal(changed, clean)


def _attention_edit_reaches(model: StandardizedTransformer, layer: int) -> tuple[bool, bool]:
    """Whether pushing attentions_output[layer] at the last token changes that layer's MLP output and layer output."""
    saved = {}
    for name in ("clean", "edited"):
        with torch.no_grad(), model.trace(PROMPTS):
            if name == "edited":
                attention = model.attentions_output[layer].clone()
                attention[:, -1] += 10.0
                model.attentions_output[layer] = attention
            saved[f"{name}_mlp"] = model.mlps_output[layer].clone().save()
            saved[f"{name}_layer"] = model.layers_output[layer].save()
    return (
        not torch.equal(saved["clean_mlp"], saved["edited_mlp"]),
        not torch.equal(saved["clean_layer"], saved["edited_layer"]),
    )


@pytest.mark.parametrize("overrides", [TINY, TINY_NEW_DECODER], ids=["multi_query", "new_decoder_architecture"])
def test_parallel_layouts_feed_the_mlp_the_layer_input_not_the_attention_output(overrides):
    """Residual(kind="parallel"): an attention edit reaches the layer output but not that layer's MLP.

    Declared sequential (mlps_input = norm(layers_input + attentions_output)), the same
    edit would have to reach the MLP; the generic residual sum cannot tell the two apart.
    """
    hf, model = _load(overrides)
    assert model.adapter.residual.kind == "parallel"
    assert _attention_edit_reaches(model, 0) == (False, True)
    layer = hf.transformer.h[0]
    with torch.no_grad(), model.trace(PROMPTS):
        layer_input = model.layers_input[0].save()
        attention_input = model.attentions_input[0].save()
        mlp_input = model.mlps_input[0].save()
    if overrides["new_decoder_architecture"]:
        with torch.no_grad():
            assert torch.equal(attention_input, layer.ln_attn(layer_input))
            assert torch.equal(mlp_input, layer.ln_mlp(layer_input))
    else:
        assert torch.equal(mlp_input, attention_input)


def test_rw_layout_is_sequential_and_served_by_falcon_rw():
    """Falcon-RW (ALiBi, parallel_attn=False): refused by `falcon`, sequential under `falcon_rw`."""
    hf, tokenizer = build_tiny("falcon", overrides=TINY_RW)
    with pytest.raises(UnsupportedArchitectureError, match=r"alibi=True with parallel_attn=False.*adapter='falcon_rw'"):
        StandardizedTransformer(hf, tokenizer=tokenizer, adapter="falcon")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)  # `falcon` refuses the layout; `falcon_rw` takes it
    assert model.adapter.name == "falcon_rw"
    assert model.adapter.residual.kind == "sequential"
    assert _attention_edit_reaches(model, 0) == (True, True)
    assert _unexpected(nnrosetta_conformance.run(model), FALCON_RW) == []


def test_parallel_layer_adds_the_attention_into_the_mlp_output_in_place():
    """Why the adapter declares mlps_output mutated in place: Falcon adds the attention into it.

    Read through the accessor (a copy taken when the MLP returns), it is the MLP's own output
    and the parallel sum holds; the module's raw output, saved, ends up holding mlp + attention.
    """
    hf, model = _load({})
    with torch.no_grad(), model.trace(PROMPTS):
        layer_input = model.layers_input[0].save()
        attention = model.attentions_output[0].save()
        mlp_input = model.mlps_input[0].save()
        saved = model.layers[0].mlp.output.save()
        copied = model.mlps_output[0].save()
        layer_output = model.layers_output[0].save()
    with torch.no_grad():
        assert torch.equal(copied, hf.transformer.h[0].mlp(mlp_input))
    assert torch.equal(saved, copied + attention)
    assert torch.allclose(layer_output, layer_input + attention + copied, atol=1e-6, rtol=0)


@pytest.mark.parametrize("overrides, adapter", [(TINY, None), (TINY_RW, "falcon_rw")], ids=["rotary", "alibi"])
def test_attention_probabilities_equal_hf_when_loaded_eager(tmp_path, overrides, adapter):
    """Loaded from a path with enable_attention_probs=True, the attention check passes on both branches."""
    folder = save_tiny("falcon", tmp_path / "falcon", adapter=FALCON, overrides=overrides)
    model = StandardizedTransformer(str(folder), adapter=adapter, enable_attention_probs=True)
    report = nnrosetta_conformance.run(model, ["attention_probabilities"])
    assert [(r.name, r.status) for r in report.results] == [("attention_probabilities", "passed")]
