"""DeepSeek routing specifics a tiny model leaves untested: a nonzero score bias and open groups.

Tiny models start with a zero e_score_correction_bias (a buffer, not perturbed), so the
suite's recomputation of the choice never sees the bias. Here it is set so that it
overturns the unbiased choice: the experts the model uses must follow the biased
scores in the open groups, while the weights stay the unbiased sigmoid scores.
"""

from __future__ import annotations

import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.checks.moe import chosen_by_declaration
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog", "Paris"]


def test_score_bias_changes_the_choice_and_the_declaration_follows_it():
    hf, tokenizer = build_tiny("deepseek_v3")
    router = hf.model.layers[1].mlp.gate
    with torch.no_grad():
        router.e_score_correction_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0]))
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = {}
    with torch.no_grad(), model.trace(PROMPTS):
        saved["logits"] = model.routers_output[1].save()
        top = model.router_top_k[1]
        saved["indices"], saved["weights"] = top.indices.save(), top.weights.save()
    flat = saved["logits"].reshape(-1, 8)
    declared = chosen_by_declaration(model, 1, flat).sort(-1).values
    assert torch.equal(declared, saved["indices"].reshape(-1, 2).sort(-1).values)
    unbiased = flat.sigmoid().topk(2, dim=-1).indices.sort(-1).values
    assert not torch.equal(declared, unbiased)  # the bias overturned some choices
    assert (saved["indices"] == 6).any(-1).all()  # expert 6's group is always open and it always wins
    chosen = flat.sigmoid().gather(-1, saved["indices"].reshape(-1, 2))
    expected = chosen / chosen.sum(-1, keepdim=True) * hf.config.routed_scaling_factor
    torch.testing.assert_close(saved["weights"].reshape(-1, 2), expected, rtol=0, atol=1e-6)
