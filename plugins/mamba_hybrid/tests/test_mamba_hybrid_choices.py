"""Mamba-2 hybrids: transformers' cache names mapped to kinds, Nemotron-H's one-mixer blocks, Granite's refusal."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The capital of France is"


def test_nemotron_h_mlp_blocks_have_no_mixer_and_serve_their_block_as_the_mlp():
    hf, tokenizer = build_tiny("nemotron_h")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("state_space", "attention", "mlp", "mlp")  # pattern "M*-E"
    assert type(hf.model.layers[3].mixer).__name__ == "NemotronHMoE"
    with pytest.raises(CapabilityError, match=r"no token mixer; layers \[0, 1\] have one"):
        model.mixers_output[2]
    with pytest.raises(CapabilityError, match=r"no MLP .*one mixer: Mamba-2, attention, MLP or MoE"):
        model.mlps_output[0]
    with torch.no_grad(), model.trace(PROMPT):
        scan = model.mixers_output[0].save()
        attention = model.attentions_output[1].save()
        block_input = model.layers_input[2].save()
        mlp = model.mlps_output[2].save()
        output = model.layers_output[2].save()
    assert torch.equal(output, block_input + mlp)
    assert scan.shape == attention.shape == output.shape


def test_bamba_state_space_layers_are_its_mamba_mixers_and_attention_layers_its_self_attn():
    hf, tokenizer = build_tiny("bamba")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert hf.config.layers_block_type == ["linear_attention", "full_attention"] * 2  # transformers' cache names
    assert model.layer_kinds == ("state_space", "attention") * 2
    assert model.mixers[0]._module is hf.model.layers[0].mamba
    assert model.attentions[1]._module is hf.model.layers[1].self_attn
    with pytest.raises(CapabilityError, match="'state_space' layer"):
        model.attentions[2]


def test_granite_hybrid_with_routed_experts_is_refused_with_the_reason():
    hf, tokenizer = build_tiny("granitemoehybrid", overrides={"num_local_experts": 4, "num_experts_per_tok": 2})
    with pytest.raises(UnsupportedArchitectureError, match=r"block_sparse_moe\(x\) \+ shared_mlp\(x\)"):
        StandardizedTransformer(hf, tokenizer=tokenizer)


def test_falcon_h1_serves_its_attention_as_attention_and_its_parallel_mamba_as_the_parallel_mixer():
    hf, tokenizer = build_tiny("falcon_h1")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    config = hf.config
    assert model.layer_kinds == ("attention",) * config.num_hidden_layers
    assert model.attentions[0]._module is hf.model.layers[0].self_attn
    bamba, bamba_tokenizer = build_tiny("bamba")
    with pytest.raises(CapabilityError, match=r"runs one token mixer"):
        StandardizedTransformer(bamba, tokenizer=bamba_tokenizer).parallel_mixers_output[0]
    with torch.no_grad(), model.trace(PROMPT):
        layer_input = model.layers_input[0].save()
        attention_input = model.attentions_input[0].save()
        attention = model.attentions_output[0].save()
        mlp = model.mlps_output[0].save()
        output = model.layers_output[0].save()
    with torch.no_grad(), model.trace(PROMPT):  # the Mamba-2 mixer runs before the attention
        scan_input = model.parallel_mixers_input[0].save()
        scan = model.parallel_mixers_output[0].save()
    # Both read one normed input; the attention's is scaled by attention_in_multiplier on the way in.
    assert torch.equal(attention_input, scan_input * config.attention_in_multiplier)
    mixed = layer_input + (scan * config.ssm_out_multiplier + attention * config.attention_out_multiplier)
    assert torch.equal(output, mixed + mlp)


@pytest.mark.parametrize("model_type", ["zamba", "zamba2"])
def test_zamba_hybrid_layers_serve_their_mamba_as_the_mixer_fed_by_the_shared_block(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    hybrid = hf.config.layers_block_type.index("hybrid")
    assert model.layer_kinds == ("state_space",) * hf.config.num_hidden_layers
    assert model.mixers[hybrid]._module is hf.model.layers[hybrid].mamba_decoder.mamba
    assert model.mixers[0]._module is hf.model.layers[0].mamba
    with pytest.raises(CapabilityError, match="'state_space' layer"):
        model.attentions_output[hybrid]
    with torch.no_grad(), model.trace(PROMPT):
        layer_input = model.layers_input[hybrid].save()
        scan = model.mixers_output[hybrid].save()
        output = model.layers_output[hybrid].save()
    assert torch.equal(output, layer_input + scan)  # the shared block feeds the scan's input, not the stream
