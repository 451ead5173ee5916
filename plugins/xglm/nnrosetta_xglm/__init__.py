"""nnrosetta plugin for fairseq-style decoders: ``xglm`` and ``biogpt``.

Both are fairseq's pre-norm transformer decoder: each layer is ``self_attn_layer_norm``
→ ``self_attn`` (output projection ``out_proj``) → residual add, then
``final_layer_norm`` → ``fc1`` → activation → ``fc2`` → residual add. No module wraps
the MLP, so ``mlp`` is the span ``fc1`` … ``fc2`` (``mlps_input[i]`` is the normed
stream ``fc1`` reads, ``mlps_output[i]`` what ``fc2`` adds). The family declares that
layer once; each type says where its decoder sits and how its attention is written.

``token_embeddings`` is the output of the token-embedding module, which already
multiplies the looked-up rows by ``sqrt(hidden_size)`` (``*ScaledWordEmbedding``,
when ``config.scale_embedding``, the default); the position embeddings are added
after it, so ``layers_input[0] == token_embeddings + positions``, and a write to
``token_embeddings`` replaces the scaled token part only:

- ``xglm``: fixed sinusoidal positions (``model.embed_positions``, a buffer, no
  parameters), rows ``position_ids + 2``. Its attention is written by hand (queries
  pre-multiplied by ``scaling``, heads flattened into ``torch.bmm``), with no
  ``attention_interface`` call; the probabilities are served from the
  ``attn_weights_reshaped`` it returns. Per-head values are read where it holds
  all three flattened as (batch * heads, seq, head_dim) just before ``torch.bmm``
  (`XGLM_HEADS`), served per head; its queries carry the 1/sqrt(head_dim) scaling.
- ``biogpt``: learned positions (``biogpt.embed_positions``), rows
  ``position_ids + 2``; transformers' standard attention call, so probabilities and
  heads follow the conventions (no rotary).
"""

from __future__ import annotations

from nnrosetta import Adapter, Assigned, AttentionSpec, Called, HeadsSpec, Span, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("xglm", "biogpt")

#: XGLM's hand-written attention returns (and multiplies the values by) this (batch, heads, q, k) view.
XGLM_ATTENTION = AttentionSpec(probabilities=Assigned("attn_weights_reshaped"))

#: XGLM's heads: its flattened (batch * heads, seq, head_dim) queries, keys and values, the last
#: assignments before the first torch.bmm, in that order; the queries carry the 1/sqrt(head_dim)
#: scaling the forward multiplies in with q_proj. Attention is written by hand: no attention call.
XGLM_HEADS = HeadsSpec(
    output_projection="out_proj",
    queries=Assigned("query_states", before=Called("torch.bmm")),
    keys=Assigned("key_states", before=Called("torch.bmm")),
    values=Assigned("value_states", before=Called("torch.bmm")),
    flat_heads=True,
)

XGLM = Adapter(
    name="xglm",
    model_types=MODEL_TYPES,
    spans={"mlp": Span("fc1", "fc2")},
    variants={
        "xglm": Variant(
            rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.layer_norm": "ln_final"},
            config_keys={"num_layers": "num_layers", "num_heads": "attention_heads", "num_kv_heads": None,
                         "head_dim": None, "hidden_size": "d_model"},
            attention=XGLM_ATTENTION,
            heads=XGLM_HEADS,
            # pad_token_id 1 as in XGLM's own config: the sinusoid table zeroes row pad_token_id, which
            # must be one of the two slots below the position offset of 2 (the tokenizer's pad, 3, is not).
            tiny_config={"d_model": 32, "ffn_dim": 64, "num_layers": 2, "attention_heads": 4,
                         "max_position_embeddings": 128, "pad_token_id": 1},
            notes="sinusoidal positions; hand-written attention: probabilities and heads (queries pre-scaled "
                  "by 1/sqrt(head_dim)) served, no rotated values or recomputed patterns",
        ),
        "biogpt": Variant(
            rename={"biogpt.embed_tokens": "embed_tokens", "biogpt.layers": "layers",
                    "biogpt.layer_norm": "ln_final", "output_projection": "lm_head"},
            config_keys={"num_kv_heads": None, "head_dim": None},
            attention=conventions.ATTENTION,
            heads=conventions.heads(output_projection="out_proj", rotary=False),
            tiny_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                         "num_attention_heads": 4, "max_position_embeddings": 128},
            notes="learned positions; the decoder at biogpt, the unembedding at output_projection",
        ),
    },
    description="fairseq-style decoders (XGLM, BioGPT): scaled token embeddings plus positions, mlp = fc1..fc2.",
)


@hookimpl
def register_adapters(register) -> None:
    register(XGLM)
