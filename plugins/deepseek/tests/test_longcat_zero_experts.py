"""Zero-computation experts (LongCat-Flash) through the MoE interface, on LongCat's own block.

longcat_flash is refused as a whole (two attentions and two MLPs per layer), so the
suite never routes through its zero experts. Here an adapter that declares only the
MoE shortcut block (``mlp``) shows what `MoESpec.zero_experts_key` serves: indices
n_routed_experts .. n_routed_experts + zero_expert_num - 1 are choosable, and a token
forced to one of them gets its input back times the weight.
"""

from __future__ import annotations

import torch

from nnrosetta import Adapter, ConfigKeys, MoESpec, StandardizedTransformer
from nnrosetta.moe_declarations import Routing
from nnrosetta_conformance.runner import run
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog", "Paris"]

LONGCAT_MOE_ONLY = Adapter(
    name="longcat_moe_only",
    model_types=("longcat_flash",),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.norm": "ln_final"},
    # Each decoder layer counts twice in num_hidden_layers (two attentions); num_layers is the modules'.
    config_keys=ConfigKeys(num_layers="num_layers", head_dim="qk_head_dim"),
    moe=MoESpec(
        router="router",
        num_experts_key=lambda config: config.n_routed_experts + config.zero_expert_num,
        experts_per_token_key="moe_topk",
        normalize_top_k=False,
        zero_experts_key="zero_expert_num",
        routing=Routing(scores="softmax", score_bias="router.e_score_correction_bias"),
    ),
    tiny_config={
        "hidden_size": 32, "num_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "ffn_hidden_size": 48, "expert_ffn_hidden_size": 24, "n_routed_experts": 4, "zero_expert_num": 2,
        "moe_topk": 2, "routed_scaling_factor": 2.0, "max_position_embeddings": 128,
        "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "head_dim": 4,
        "v_head_dim": 8,
    },
)


def _model() -> StandardizedTransformer:
    hf, tokenizer = build_tiny("longcat_flash", adapter=LONGCAT_MOE_ONLY)
    # check=False: the load-time checks read attentions_output, and this layer has two attentions.
    return StandardizedTransformer(hf, tokenizer=tokenizer, adapter=LONGCAT_MOE_ONLY, check=False)


def test_moe_routing_passes_with_zero_experts_forced_and_recomputed():
    model = _model()
    assert model.num_experts == 6
    report = run(model, ["moe_routing"])
    assert [(r.name, r.status) for r in report.results] == [("moe_routing", "passed")], report.results[0].message
    with torch.no_grad(), model.trace(PROMPTS):
        indices = model.router_top_k[0].indices.save()
    assert int(indices.max()) < 6 and indices.shape[-1] == 2
    assert bool((indices >= 4).any())  # the router does choose zero experts on its own


def test_a_token_forced_to_a_zero_expert_gets_its_input_times_the_weight():
    model = _model()
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["input"] = model.mlps_input[0].save()
        top = model.router_top_k[0]
        weights = torch.zeros_like(top.weights)
        weights[..., 0] = 0.75
        model.router_top_k[0] = (torch.full_like(top.indices, 5), weights)
        saved["output"] = model.mlps_output[0].save()
    assert torch.equal(saved["output"], saved["input"] * 0.75)
