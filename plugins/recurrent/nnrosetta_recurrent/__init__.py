"""nnrosetta plugin for recurrent language models: RG-LRU, mLSTM and RWKV cells instead of (most) attention.

- ``recurrent_gemma`` (Griffin): ``config.block_types`` cycles over the layers; a
  ``"recurrent"`` layer's temporal block is an RG-LRU recurrence (`RECURRENT`), an
  ``"attention"`` one a local softmax attention over ``attention_window_size`` tokens
  (`SLIDING_ATTENTION`); both live at ``temporal_block``, the MLP at ``mlp_block``. Logits are
  soft-capped: ``tanh(lm_head(norm(h)) / logits_soft_cap) * logits_soft_cap``. Probabilities
  and heads are read in the attention layers' ``temporal_block`` (the specs' ``module``).
- ``xlstm``: every block an mLSTM cell at ``mlstm_layer`` then a feed-forward at ``ffn``; logits
  soft-capped by ``output_logit_soft_cap``;
- ``rwkv``: refused (its stream is halved between blocks, block 0 norms its own input, and its
  channel mixing reads the previous token).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from nnrosetta import Adapter, Variant, conventions, hookimpl
from nnrosetta.layer_kinds import RECURRENT, SLIDING_ATTENTION, LayerKinds, every_layer

if TYPE_CHECKING:
    import torch

    from nnrosetta.model import StandardizedTransformer

NNROSETTA_CONTRACT = 2

GRIFFIN_BLOCKS = {"recurrent": RECURRENT, "attention": SLIDING_ATTENTION}


def griffin_kinds(config: Any) -> list[str]:
    """Griffin's layer kinds: ``config.block_types`` repeated over the layers."""
    blocks = list(config.block_types)
    return [GRIFFIN_BLOCKS[blocks[i % len(blocks)]] for i in range(config.num_hidden_layers)]


def soft_capped(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """RecurrentGemma's logits: ``tanh(lm_head(norm(h)) / cap) * cap``."""
    import torch

    cap = model.config.logits_soft_cap
    return torch.tanh(model.lm_head(model.ln_final(hidden)) / cap) * cap


def xlstm_soft_capped(model: "StandardizedTransformer", hidden: "torch.Tensor") -> "torch.Tensor":
    """xLSTM's logits: ``tanh(lm_head(norm(h)) / cap) * cap`` with ``config.output_logit_soft_cap``."""
    import torch

    cap = model.config.output_logit_soft_cap
    return torch.tanh(model.lm_head(model.ln_final(hidden)) / cap) * cap


RECURRENT_FAMILY = Adapter(
    name="recurrent",
    model_types=("recurrent_gemma", "xlstm", "rwkv"),
    rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.final_norm": "ln_final",
            "mlp_block": "mlp"},
    layer_kinds=LayerKinds(
        kinds=griffin_kinds,
        mixers={RECURRENT: "temporal_block", SLIDING_ATTENTION: "temporal_block"},
    ),
    not_padding_invariant=(
        "transformers' RG-LRU recurrence and its temporal convolution ignore the attention mask, so left "
        "padding tokens enter the recurrent state of the real ones (the plain HF model does the same)"
    ),
    final_projection=soft_capped,
    # Griffin's local attention is the temporal block of its attention layers: the specs name it there.
    attention=dataclasses.replace(conventions.ATTENTION, module="temporal_block"),
    heads=dataclasses.replace(conventions.HEADS, module="temporal_block", output_projection="temporal_block.o_proj"),
    tiny_config={
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "lru_width": 32,
        "attention_window_size": 8,
        "block_types": ["recurrent", "recurrent", "attention"],
        "logits_soft_cap": 3.0,
    },
    variants={
        "xlstm": Variant(
            rename={"model.embed_tokens": None, "model.layers": None, "model.final_norm": None, "mlp_block": None,
                    "backbone.embeddings": "embed_tokens", "backbone.blocks": "layers", "backbone.out_norm": "ln_final",
                    "ffn": "mlp"},
            layer_kinds=LayerKinds(
                kinds=every_layer(RECURRENT, "num_blocks"),
                mixers={RECURRENT: "mlstm_layer"},
            ),
            not_padding_invariant=(
                "transformers' xLSTM ignores the attention mask: left padding tokens enter the mLSTM state of "
                "the real ones (the plain HF model does the same)"
            ),
            final_projection=xlstm_soft_capped,
            attention=None,
            heads=None,
            # qk and v widths are rounded up to multiples of 64: a width of 64 keeps them exact.
            tiny_config={"embedding_dim": 64, "num_blocks": 2, "num_hidden_layers": 2, "num_heads": 4,
                         "qk_dim_factor": 1.0, "v_dim_factor": 1.0, "hidden_size": 64, "output_logit_soft_cap": 3.0},
            notes="every block an mLSTM cell (mlstm_layer) and a feed-forward (ffn)",
        ),
        "rwkv": Variant(unsupported=(
            "RWKV's residual stream is not one chain through its blocks: block 0 norms its input (pre_ln) before "
            "adding to it, and in inference mode the model halves the hidden state after every rescale_every-th "
            "block (6 in the released checkpoints), so layers_input[i+1] is not layers_output[i]; and its channel "
            "mixing (feed_forward) token-shifts, reading the previous token, so it is no per-token MLP"
        )),
    },
    description="Recurrent LMs: Griffin's RG-LRU and local attention (temporal_block), xLSTM's mLSTM cells.",
)


@hookimpl
def register_adapters(register) -> None:
    register(RECURRENT_FAMILY)
