"""Final projections of BERT-style causal LMs whose prediction head is split over two modules.

Most BERT-style heads are one module whose forward is the whole head (transform,
then the vocabulary projection): it is the standard ``lm_head`` and the logits are
``lm_head(h)``. ELECTRA's generator keeps the transform (``generator_predictions``:
dense, activation, LayerNorm) and the vocabulary projection (``generator_lm_head``)
as two siblings; the standard ``lm_head`` is the projection, and
`electra_generator_head` applies both in the order ``ElectraForCausalLM.forward`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from nnrosetta import StandardizedTransformer


def electra_generator_head(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """``generator_lm_head(generator_predictions(h))``: ELECTRA's logits, bit-identical to its forward."""
    return model.lm_head(model.generator_predictions(hidden))
