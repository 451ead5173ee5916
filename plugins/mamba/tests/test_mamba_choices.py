"""Mamba: every layer is a scan, and a patch of the scan's output is the same edit made by a hook on HF's mixer."""

from __future__ import annotations

import pytest
import torch

from nnrosetta import CapabilityError, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

PROMPT = "The cat sat on the mat and the dog slept by the"


@pytest.mark.parametrize("model_type", ["mamba", "falcon_mamba", "mamba2"])
def test_patching_the_scan_output_equals_the_edit_hooked_into_the_hf_mixer(model_type):
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    assert model.layer_kinds == ("state_space", "state_space")
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    push = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), model.trace(ids):
        edited = model.mixers_output[1].clone()
        edited[:, 3] += push
        model.mixers_output[1] = edited
        patched = model.logits.save()

    def hook(module, args, output):
        output = output.clone()
        output[:, 3] += push
        return output

    handle = hf.backbone.layers[1].mixer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            expected = hf(ids).logits
    finally:
        handle.remove()
    with torch.no_grad():
        clean = hf(ids).logits
    assert torch.equal(patched, expected)
    assert torch.equal(patched[:, :3], clean[:, :3]) and not torch.equal(patched[:, 3:], clean[:, 3:])


def test_attention_and_mlp_accessors_are_refused_with_the_layer_kind():
    model = StandardizedTransformer("tiny:mamba")
    with pytest.raises(CapabilityError, match=r"'state_space' layer.*no layer has softmax attention"):
        model.attentions_output[0]
    with pytest.raises(CapabilityError, match="no MLP"):
        model.mlps_output[1]
    with pytest.raises(CapabilityError, match="forms no softmax attention"):
        model.attention_probabilities[0]


def test_a_malformed_layer_kinds_declaration_is_refused_naming_the_field():
    import dataclasses

    from nnrosetta import InvalidAdapterError
    from nnrosetta.layer_kinds import LayerKinds, every_layer
    from nnrosetta_mamba import MAMBA

    wrong = dataclasses.replace(MAMBA, layer_kinds=LayerKinds(kinds=every_layer("ssm"), mixers={"ssm": "mixer"}))
    with pytest.raises(InvalidAdapterError, match=r"field `layer_kinds` mixers names kind 'ssm'"):
        wrong.validate("test")


def test_kinds_that_do_not_fit_the_layers_are_refused_at_load():
    import dataclasses

    from nnrosetta import RenamingError
    from nnrosetta.layer_kinds import STATE_SPACE, LayerKinds
    from nnrosetta_mamba import MAMBA

    hf, tokenizer = build_tiny("mamba")
    short = dataclasses.replace(MAMBA.for_type("mamba"), layer_kinds=LayerKinds(kinds=lambda config: [STATE_SPACE]))
    with pytest.raises(RenamingError, match=r"declares layer kinds \['state_space'\] for a model with 2 layers"):
        StandardizedTransformer(hf, tokenizer=tokenizer, adapter=short)
    elsewhere = dataclasses.replace(
        MAMBA.for_type("mamba"), layer_kinds=LayerKinds(kinds=lambda config: [STATE_SPACE] * 2, mixers={STATE_SPACE: "scan"})
    )
    with pytest.raises(RenamingError, match=r"layer 0 \(MambaBlock\) is declared a 'state_space' layer whose mixer is `scan`"):
        StandardizedTransformer(hf, tokenizer=tokenizer, adapter=elsewhere)
