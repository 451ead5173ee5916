"""nnrosetta plugin for OPT: ``model.decoder.layers[i]``, ``model.decoder.embed_tokens``, ``lm_head``.

What a rename map alone gets wrong:

- OPT has no MLP module: the layer calls ``fc1``, the activation and ``fc2`` itself,
  so the standard ``mlp`` is the span ``fc1`` ... ``fc2``. The layer flattens tokens
  to (batch * seq, hidden) around it; the core's accessors show (batch, seq, hidden).
- OPT scales the queries by ``1/sqrt(head_dim)`` before the attention call (which
  then gets ``scaling=1.0``), so ``queries[i]`` are the scaled queries.
- Two layouts share the type ``opt``. The pre-norm one (OPT-125m, 1.3b and every
  larger size) is served by the adapter ``opt``. OPT-350m is post-norm
  (``do_layer_norm_before=False``), has no final norm, and its embedding is
  ``word_embed_proj_dim`` wide: ``project_in`` widens it before the first layer and
  ``project_out`` narrows the last layer's output before ``lm_head``. A model type has
  one declaration per adapter, so that layout is the adapter ``opt_post_norm``:
  ``opt`` refuses it, and loading picks the type's next claimant that accepts the config.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from nnrosetta import Adapter, ConfigKeys, Residual, Span, conventions, hookimpl

if TYPE_CHECKING:
    import torch

    from nnrosetta import StandardizedTransformer

NNROSETTA_CONTRACT = 2

POST_NORM_ADAPTER = "opt_post_norm"

RENAME = {
    "model.decoder.embed_tokens": "embed_tokens",
    "model.decoder.layers": "layers",
    "model.decoder.final_layer_norm": "ln_final",
}

#: OPT-125m's defaults shrunk: pre-norm, ReLU, biases, embedding as wide as the residual stream.
TINY = {
    "hidden_size": 32,
    "word_embed_proj_dim": 32,
    "ffn_dim": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "do_layer_norm_before": True,
}

#: OPT-350m's layout shrunk: post-norm, a 16-wide embedding projected in and out of 32.
TINY_POST_NORM = {**TINY, "do_layer_norm_before": False, "word_embed_proj_dim": 16}


def _pre_norm_refusal(config) -> Optional[str]:
    if not getattr(config, "do_layer_norm_before", True):
        return (
            "do_layer_norm_before=False (the OPT-350m layout): post-norm layers, no final norm and an "
            "embedding projected in and out of the residual stream; load it with "
            f"StandardizedTransformer(..., adapter={POST_NORM_ADAPTER!r})"
        )
    if getattr(config, "_remove_final_layer_norm", False):
        return (
            "_remove_final_layer_norm=True (a checkpoint fine-tuned before transformers 4.20.1): this pre-norm "
            "decoder has no final norm, which the declaration's ln_final names; no nnrosetta adapter serves it"
        )
    if config.word_embed_proj_dim != config.hidden_size:
        return (
            f"word_embed_proj_dim={config.word_embed_proj_dim} differs from hidden_size={config.hidden_size} "
            "in a pre-norm OPT: the embedding is then narrower than the residual stream and the logits pass "
            "through project_out, which the pre-norm declaration does not include; no released OPT has this "
            "layout and no nnrosetta adapter serves it"
        )
    return None


def _post_norm_refusal(config) -> Optional[str]:
    if getattr(config, "do_layer_norm_before", True):
        return (
            "do_layer_norm_before=True: a pre-norm OPT (OPT-125m, 1.3b, ...), which the adapter 'opt' serves; "
            "load it without adapter=, or with adapter='opt'"
        )
    return None


def post_norm_projection(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """Logits as post-norm OPT computes them: ``lm_head(project_out(h))`` (no final norm).

    The last layer already ends in its own ``final_layer_norm``; ``project_out`` exists
    when the embedding is narrower than the residual stream (OPT-350m).
    """
    project_out = model._module.model.decoder.project_out
    if project_out is not None:
        hidden = model.model.decoder.project_out(hidden)
    return model.lm_head(hidden)


OPT = Adapter(
    name="opt",
    model_types=("opt",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    spans={"mlp": Span("fc1", "fc2")},
    attention=conventions.ATTENTION,
    heads=conventions.heads(output_projection="out_proj", rotary=False),
    residual=Residual(kind="sequential"),
    tiny_config=TINY,
    refuse=_pre_norm_refusal,
    description=(
        "OPT, pre-norm (125m, 1.3b, ...): model.decoder.layers[i].self_attn, mlp = span fc1...fc2, "
        "model.decoder.final_layer_norm; post-norm OPT-350m is the adapter 'opt_post_norm'."
    ),
)

#: OPT-350m: the same module tree, but post-norm with no final norm, and the logits go through project_out.
OPT_POST_NORM = dataclasses.replace(
    OPT,
    name=POST_NORM_ADAPTER,
    rename={path: name for path, name in RENAME.items() if name != "ln_final"},
    absent={"ln_final": "post-norm OPT (OPT-350m) has no final norm: each layer ends in its own final_layer_norm"},
    residual=Residual(kind="post_norm"),
    final_projection=post_norm_projection,
    tiny_config={},
    refuse=_post_norm_refusal,
    priority=-1,
    description=(
        "OPT, post-norm (350m; do_layer_norm_before=False): no final norm, logits = lm_head(project_out(h)); "
        "chosen when 'opt' refuses the config."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(OPT)
    register(OPT_POST_NORM)
