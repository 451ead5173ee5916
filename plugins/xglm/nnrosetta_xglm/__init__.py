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
  ``attn_weights_reshaped`` it returns. Per-head values are not served
  (`XGLM_NO_HEADS`): its per-head keys and values come before its queries, and
  after them it holds all three only flattened as (batch * heads, seq, head_dim).
- ``biogpt``: learned positions (``biogpt.embed_positions``), rows
  ``position_ids + 2``; transformers' standard attention call, so probabilities and
  heads follow the conventions (no rotary).
"""

from __future__ import annotations

from nnrosetta import Adapter, Assigned, AttentionSpec, Span, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("xglm", "biogpt")

#: XGLM's hand-written attention returns (and multiplies the values by) this (batch, heads, q, k) view.
XGLM_ATTENTION = AttentionSpec(probabilities=Assigned("attn_weights_reshaped"))

#: Why XGLM declares no `HeadsSpec`, in the words `nnrosetta adapters` shows.
XGLM_NO_HEADS = (
    "per-head values are not declared: the forward assigns its (batch, heads, seq, head_dim) keys and values "
    "(line `key_states.view(...).transpose(1, 2)`) before its queries, and has no attention call at which "
    "values could be read later; after the queries it holds them only flattened to (batch * heads, seq, "
    "head_dim) for torch.bmm, which a HeadsSpec point cannot be, so queries, keys and values cannot be read "
    "in forward order"
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
            # pad_token_id 1 as in XGLM's own config: the sinusoid table zeroes row pad_token_id, which
            # must be one of the two slots below the position offset of 2 (the tokenizer's pad, 3, is not).
            tiny_config={"d_model": 32, "ffn_dim": 64, "num_layers": 2, "attention_heads": 4,
                         "max_position_embeddings": 128, "pad_token_id": 1},
            notes="sinusoidal positions; hand-written attention: probabilities served; " + XGLM_NO_HEADS,
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
