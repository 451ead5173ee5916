"""nnrosetta plugin for the Llama family and every model type sharing its module tree.

These types keep their blocks at ``model.layers``, each with ``self_attn`` and
``mlp``, the final norm at ``model.norm`` and the embedding at
``model.embed_tokens``. The family is declared once here; what each type changes
(its residual form, its final projection with the family's logit scaling, heads
it cannot serve, a tiny config keeping its distinctive features) is a `Variant`
in `nnrosetta_llama.variants`.
"""

from __future__ import annotations

from nnrosetta import Adapter, conventions, hookimpl

from .variants import MODEL_TYPES, REFUSED_TYPES, RENAME, TINY, VARIANTS

NNROSETTA_CONTRACT = 2

__all__ = ["LLAMA", "MODEL_TYPES", "NNROSETTA_CONTRACT", "register_adapters"]

LLAMA = Adapter(
    name="llama",
    model_types=MODEL_TYPES + REFUSED_TYPES,
    rename=RENAME,
    # Emu3's AutoModelForCausalLM is its text model, whose config type ("emu3_text_model") has no
    # causal-LM class of its own to build a tiny model from; the class claims it.
    model_classes=("Emu3ForCausalLM",),
    attention=conventions.ATTENTION,
    heads=conventions.HEADS,
    tiny_config=TINY,
    variants=VARIANTS,
    description="Llama-style decoders: model.layers[i].{self_attn,mlp}, model.norm, model.embed_tokens.",
)


@hookimpl
def register_adapters(register) -> None:
    register(LLAMA)
