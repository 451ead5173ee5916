"""The logit lens stops the forward after the last layer it reads, with the same probabilities."""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta.interventions import logit_lens
from nnrosetta.interventions.inputs import encode
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The capital of Spain is", "The cat sat on the"]


def test_the_lens_runs_no_layer_after_the_last_it_reads_and_unembeds_once():
    model, tokenizer = build_tiny("llama", overrides={"num_hidden_layers": 4})
    lm = StandardizedTransformer(model, tokenizer=tokenizer)
    ran: list[str] = []
    hooks = [model.lm_head.register_forward_pre_hook(lambda *_: ran.append("lm_head"))] + [
        layer.mlp.register_forward_pre_hook(lambda *_, i=i: ran.append(f"layer {i}"))
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        probs = logit_lens(lm, PROMPTS, layers=[0, 1])
    finally:
        for hook in hooks:
            hook.remove()
    # Layers 2 and 3 never run; lm_head runs once, for the lens's own projection of the states read.
    assert ran == ["layer 0", "layer 1", "lm_head"]
    states: list[torch.Tensor] = []
    with torch.no_grad(), lm.trace(encode(lm, PROMPTS)):  # a full forward, read the same way
        for i in (0, 1):
            states.append(lm.layers_output[i][:, -1].save())
    with torch.no_grad():
        expected = lm.project_on_vocab(torch.stack(states, dim=1)).softmax(dim=-1)
    assert probs.shape == (2, 2, lm.vocab_size)
    assert torch.equal(probs, expected)
