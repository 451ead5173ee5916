"""Planted declaration mistakes: the suite must catch each one, and name the check that does.

Each mutation is a realistic slip in one of the project's own adapter declarations
(a rename at the wrong module, a config key at the wrong size, a point at the
wrong value, a dropped scaling factor, a wrong MoE path). The whole suite runs on a
tiny model of the type with the mutated declaration; the test asserts that the
expected check fails (or, where the mistake makes the model unloadable, that the
gate reports it), so a weakened check is noticed at once.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
import torch

from nnrosetta import (
    Argument,
    Assigned,
    AttentionSpec,
    Called,
    Inside,
    LayerTensor,
    MoESpec,
    Residual,
    Span,
    conventions,
    default_registry,
)
from nnrosetta_conformance import run
from nnrosetta_conformance.report import FAILED, PASSED

ATTENTION_CALL = conventions.ATTENTION_CALL


def _replace(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        return dataclasses.replace(adapter, **changes)

    return mutate


def _rename(model_type: str, drop: tuple[str, ...] = (), **entries: str) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        rename = {path: name for path, name in adapter.rename.items() if path not in drop}
        rename.update({path.replace("__", "."): name for path, name in entries.items()})
        return dataclasses.replace(adapter, rename=rename)

    return mutate


def _keys(model_type: str, **keys: str) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        return dataclasses.replace(adapter, config_keys=dataclasses.replace(adapter.config_keys, **keys))

    return mutate


def _heads(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        return dataclasses.replace(adapter, heads=dataclasses.replace(adapter.heads, **changes))

    return mutate


def _moe(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        return dataclasses.replace(adapter, moe=dataclasses.replace(adapter.moe, **changes))

    return mutate


def _expert(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        moe = default_registry().resolve(model_type).moe
        return _moe(model_type, expert_by_hand=dataclasses.replace(moe.expert_by_hand, **changes))()

    return mutate


def _routing(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        moe = default_registry().resolve(model_type).moe
        return _moe(model_type, routing=dataclasses.replace(moe.routing, **changes))()

    return mutate


def _top_k_in_router(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        moe = default_registry().resolve(model_type).moe
        return _moe(model_type, top_k_in_router=dataclasses.replace(moe.top_k_in_router, **changes))()

    return mutate


def _residual(model_type: str, **changes) -> Callable[[], object]:
    def mutate():
        adapter = default_registry().resolve(model_type)
        return dataclasses.replace(adapter, residual=dataclasses.replace(adapter.residual, **changes))

    return mutate


def _beam_scale(name: str) -> object:
    return getattr(default_registry().resolve("beam").residual, name)


def _zaya_terms(name: str) -> object:
    return getattr(default_registry().resolve("zaya").residual, name)


#: (name, model type, mutated declaration, the checks of which at least one must fail)
MUTATIONS = [
    ("ln_final at the last layer's own norm", "llama",
     _rename("llama", drop=("model.norm",), model__layers__1__post_attention_layernorm="ln_final"), {"final_norm"}),
    ("ln_final at the first layer's input norm", "qwen3",
     _rename("qwen3", drop=("model.norm",), model__layers__0__input_layernorm="ln_final"), {"final_norm"}),
    ("ln_final declared absent although the logits go through it", "llama",
     _replace("llama", rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers"},
              absent={"ln_final": "planted"}), {"final_projection"}),
    ("mlp at a norm", "llama",
     _replace("llama", spans={"mlp": Span("post_attention_layernorm", "post_attention_layernorm")}), {"residual_sum"}),
    ("self_attn at the output projection", "gpt2",
     _rename("gpt2", drop=("attn",), attn__c_proj="self_attn"), {"sublayer_locality"}),
    ("mlp span ending inside the MLP", "gpt2", _replace("gpt2", spans={"mlp": Span("mlp.c_fc", "mlp.c_fc")}),
     {"accessor_shapes"}),
    ("kv-heads key at the query-heads key", "llama", _keys("llama", num_kv_heads="num_attention_heads"), {"heads"}),
    ("wrong head size key", "llama", _keys("llama", head_dim="num_attention_heads"), {"heads"}),
    ("num_heads at the layer count", "gpt2", _keys("gpt2", num_heads="n_layer"), {"heads"}),
    ("hidden size at the MLP width", "llama", _keys("llama", hidden_size="intermediate_size"),
     {"accessor_shapes", "sizes"}),
    ("vocab size at the position count", "llama", _keys("llama", vocab_size="max_position_embeddings"),
     {"accessor_shapes", "sizes"}),
    ("soft-capping dropped", "gemma2", _replace("gemma2", final_projection=None), {"final_projection"}),
    ("residual declared sequential on sandwich norms", "gemma2", _replace("gemma2", residual=Residual()),
     {"residual_sum"}),
    ("residual multiplied by a config value that is not one", "llama",
     _replace("llama", residual=Residual(scale_key="rms_norm_eps")), {"residual_sum"}),
    ("learned skip scales dropped", "doge", _replace("doge", residual=Residual()), {"residual_sum"}),
    ("skip scales of the two sublayers swapped", "doge",
     _residual("doge", attention_skip=LayerTensor("post_attention_residual"), mlp_skip=LayerTensor("input_residual")),
     {"residual_sum"}),
    ("depth-scaled adds one depth off", "beam",
     _residual("beam", attention_skip=_beam_scale("mlp_skip"), attention_scale=_beam_scale("mlp_scale")),
     {"residual_sum"}),
    ("shared MLP term dropped", "granitemoeshared", _residual("granitemoeshared", mlp_terms=()), {"residual_sum"}),
    ("shared MLP added outside the residual multiplier", "granitemoeshared",
     _residual("granitemoeshared", mlp_terms=(), layer_terms=("shared_mlp",)), {"residual_sum"}),
    ("per-layer-input branch dropped", "gemma4_text", _residual("gemma4_text", layer_terms=()), {"residual_sum"}),
    ("last layer's attention bias dropped", "gpt_neox_japanese", _residual("gpt_neox_japanese", attention_terms=()),
     {"residual_sum"}),
    ("affine skip biases dropped", "zaya", _residual("zaya", attention_skip_terms=(), mlp_skip_terms=()),
     {"residual_sum"}),
    ("affine skip bias taken as the branch's", "zaya",
     _residual("zaya", attention_skip_terms=_zaya_terms("attention_terms"),
               attention_terms=_zaya_terms("attention_skip_terms")), {"residual_sum"}),
    ("probabilities at the pre-softmax scores", "llama",
     _replace("llama", attention=AttentionSpec(Inside(ATTENTION_CALL, Assigned("attn_weights", occurrence=0)))),
     {"attention_probabilities"}),
    ("attention sinks declared on a model without them", "llama",
     _replace("llama", attention=AttentionSpec(conventions.ATTENTION.probabilities, sinks="sinks")),
     {"attention_probabilities"}),
    ("attention sinks dropped from a model with them", "gpt_oss", _replace("gpt_oss", attention=conventions.ATTENTION),
     {"attention_probabilities"}),
    ("queries and keys swapped", "llama",
     _heads("llama", queries=conventions.HEADS.keys, keys=conventions.HEADS.queries), {"heads"}),
    ("values at the keys", "qwen2", _heads("qwen2", values=conventions.HEADS.keys), {"heads"}),
    ("queries after partial rotary", "stablelm",
     _heads("stablelm", queries=Assigned("query_states", before=ATTENTION_CALL)), {"heads"}),
    ("output projection at the query projection", "llama", _heads("llama", output_projection="q_proj"), {"heads"}),
    ("fused qkv split per head instead of in blocks", "gpt2", _heads("gpt2", fused_layout="per_head"), {"heads"}),
    ("wrong MoE router path", "mixtral", _moe("mixtral", router="experts"), {"moe_routing"}),
    ("wrong experts-per-token key", "mixtral", _moe("mixtral", experts_per_token_key="num_attention_heads"),
     {"moe_routing"}),
    ("wrong expert-count key", "qwen3_moe", _moe("qwen3_moe", num_experts_key="num_experts_per_tok"),
     {"moe_routing"}),
    ("top-k renormalisation dropped", "mixtral", _moe("mixtral", normalize_top_k=False), {"moe_routing"}),
    ("gate/up halves instead of interleaved", "gpt_oss", _expert("gpt_oss", interleaved=False), {"moe_routing"}),
    ("plain activation instead of the clamped GLU", "gpt_oss", _expert("gpt_oss", activation="act_fn"), {"moe_routing"}),
    ("expert biases dropped", "gpt_oss", _expert("gpt_oss", bias_suffix=None), {"moe_routing"}),
    ("expert weights not transposed", "aria_text", _expert("aria_text", transposed=False), {"moe_routing"}),
    ("down projection applied transposed", "dbrx", _expert("dbrx", down_transposed=None), {"moe_routing"}),
    ("top-k argument positions swapped", "dbrx", _moe("dbrx", top_k_at_experts=(2, 1)), {"moe_routing"}),
    ("group-limited routing dropped", "deepseek_v3", _routing("deepseek_v3", groups=None), {"moe_routing"}),
    ("group score by top-2 sum instead of max", "deepseek_v2", _routing("deepseek_v2", group_score="top2_sum"),
     {"moe_routing"}),
    ("routed scaling factor dropped", "deepseek_v3", _moe("deepseek_v3", top_k_scale_key=None), {"moe_routing"}),
    ("router read in the wrong form", "llama4_text", _moe("llama4_text", router_returns=("logits", "dense_weights")),
     {"moe_routing"}),
    ("renormalisation claimed where the family keeps raw weights", "phimoe", _moe("phimoe", normalize_top_k=True),
     {"moe_routing"}),
    ("kv sharing map naming the wrong source layer", "gemma4_text", _keys("gemma4_text", kv_shared=lambda c: {2: 0}),
     {"sublayer_locality"}),
    ("kv sharing map dropped", "gemma4_unified_text", _keys("gemma4_unified_text", kv_shared=None),
     {"sublayer_locality"}),
    ("per-layer head sizes read from the global config", "gemma4_text", _keys("gemma4_text", per_layer=None),
     {"sizes"}),
    ("fused query projection declared without its output gate", "axk2",
     _keys("axk2", projections={"q_gate_proj": (("num_heads", "head_dim"),)}), {"sizes"}),
    ("MoE block output norm dropped", "axk1", _moe("axk1", output_norm=None), {"moe_routing"}),
    ("top-k indices written where only one of the router's two readers sees them", "jetmoe",
     _top_k_in_router("jetmoe", written=(("indices", Argument(Called("zeros.scatter"), 1)),
                                         ("weights", Assigned("top_k_gates", occurrence=1)))), {"moe_routing"}),
    ("top-k weights written where the router no longer reads them", "jetmoe",
     _top_k_in_router("jetmoe", written=(("indices", Argument(Called("zeros.scatter"), 1)),
                                         ("indices", Assigned("top_k_experts")),
                                         ("weights", Assigned("batch_gates")))), {"moe_routing"}),
    ("repeated experts handed to a router that counts each chosen expert once", "jetmoe",
     _moe("jetmoe", distinct_experts=False), {"moe_routing"}),
    ("the attention mixture's router logits compared as the MLP router's", "jetmoe",
     _moe("jetmoe", recorded_logits=(2, 0)), {"moe_routing"}),
    ("router logits read at the wrong position of the router's output", "jetmoe",
     _moe("jetmoe", router_returns=("other", "other", "logits", "other", "other")), {"moe_routing"}),
    ("skip expert declared to hand back its input", "zaya", _moe("zaya", zero_experts_output="input"),
     {"moe_routing"}),
    ("skip expert's balancing bias left out of the choice", "zaya", _routing("zaya", score_bias=None),
     {"moe_routing"}),
    ("attention-expert kv heads at the query-head count", "jetmoe", _keys("jetmoe", num_kv_heads="num_attention_heads"),
     {"sizes"}),
    ("not_padding_invariant declared on a padding-invariant model", "gpt2",
     _replace("gpt2", not_padding_invariant="planted: positions said to ignore the mask"), {"padding_invariance"}),
]


@pytest.mark.parametrize("name, model_type, mutate, expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_suite_catches_a_planted_mistake(name, model_type, mutate, expected):
    report = run(f"tiny:{model_type}", adapter=mutate())
    failed = {result.name for result in report.results if result.status == FAILED}
    assert failed & expected, (
        f"planted mistake {name!r} on {model_type}: expected a failure of {sorted(expected)}, "
        f"the suite failed {sorted(failed) or 'nothing'}"
    )


def test_an_output_scale_buffer_is_honoured_and_its_omission_caught():
    """Gemma 4's layer_scalar is a buffer (1 at init, so not perturbed): set it away from 1 to plant the mistake."""
    from nnrosetta import StandardizedTransformer

    declared = StandardizedTransformer("tiny:gemma4_text")
    dropped = StandardizedTransformer("tiny:gemma4_text", adapter=_residual("gemma4_text", output_scale=None)())
    models = (declared, dropped)
    try:
        with torch.no_grad():
            for model in models:
                for index, layer in enumerate(model.layers):
                    layer._module.layer_scalar.fill_(0.5 + 0.25 * index)
        honoured = run(declared, checks=["residual_sum"]).results
        caught = run(dropped, checks=["residual_sum"]).results
    finally:
        with torch.no_grad():
            for model in models:
                for layer in model.layers:
                    layer._module.layer_scalar.fill_(1.0)
    assert [r.status for r in honoured] == [PASSED], honoured
    assert [r.status for r in caught] == [FAILED], caught
    assert "output_scale=" not in caught[0].message
    assert "layer_terms=('post_per_layer_input_norm',)" in caught[0].message


def test_a_rename_that_would_shadow_a_module_is_refused_at_load_by_name():
    from nnrosetta import RenamingError, StandardizedTransformer

    with pytest.raises(RenamingError, match=r"adapter 'gpt2'.*alias 'mlp' for 'ln_2'.*Fix the adapter's rename map"):
        StandardizedTransformer("tiny:gpt2", adapter=_rename("gpt2", ln_2="mlp")())


def test_there_are_at_least_twenty_planted_mistakes_and_the_readme_says_how_many():
    from pathlib import Path

    assert len(MUTATIONS) >= 20
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"plants {len(MUTATIONS)} realistic declaration mistakes" in readme, "update the count in README.md"
