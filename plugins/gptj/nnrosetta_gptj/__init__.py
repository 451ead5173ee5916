"""nnrosetta plugin for GPT-J and CodeGen: ``transformer.h[i].{attn,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

Both families share one block: a single ``ln_1`` feeds the attention and the MLP,
which run in parallel and are added to the layer input in one sum
(``attn_output + mlp_output + residual``), so ``mlps_input[i]`` is
``attentions_input[i]``, not ``layers_input[i] + attentions_output[i]``. Rotary
embedding (GPT-J's interleaved ``rotate_every_two``) covers only the first
``rotary_dim`` dimensions of each head.

Attention probabilities are served (the eager attention function's dropout
output), and per-head queries, keys, values and head outputs from the forward's
own ``query``/``key``/``value`` assignments (CodeGen's forward unpicks its
model-parallel shards of ``qkv_proj`` into the same names).
"""

from __future__ import annotations

from nnrosetta import Adapter, Assigned, ConfigKeys, HeadsSpec, Residual, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("gptj", "codegen")

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "attn": "self_attn",
}

#: Per-head values at the forward's own assignments: ``query``/``key`` (batch, seq, heads, head_dim,
#: transposed only after rotary) before the first rotary call, or before the attention call when
#: ``rotary_dim`` is None and whole heads are rotated; ``value`` is already (batch, heads, seq, head_dim).
#: CodeGen splits its sharded ``qkv_proj`` into the same three names, so one declaration serves both.
HEADS = HeadsSpec(
    output_projection="out_proj",
    attention_call=conventions.ATTENTION_CALL,
    queries=Assigned("query", before=(conventions.ROTARY_CALL, conventions.ATTENTION_CALL)),
    keys=Assigned("key", before=(conventions.ROTARY_CALL, conventions.ATTENTION_CALL)),
    values=Assigned("value", before=conventions.ATTENTION_CALL),
    seq_first=("queries", "keys"),
)

#: GPT-J-shaped: 4 heads of 16, rotary on the first quarter of each head (GPT-J 6B: 64 of 256).
TINY = {"n_embd": 64, "n_layer": 2, "n_head": 4, "rotary_dim": 4, "n_positions": 128, "n_inner": 128}

GPTJ = Adapter(
    name="gptj",
    model_types=MODEL_TYPES,
    rename=RENAME,
    config_keys=ConfigKeys(
        num_layers="n_layer",
        num_heads="n_head",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="n_embd",
        vocab_size="vocab_size",
    ),
    attention=conventions.ATTENTION,
    heads=HEADS,
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    variants={
        # 8 heads of 16: two heads in each of the 4 model-parallel shards of qkv_proj.
        "codegen": Variant(tiny_config={"n_embd": 128, "n_head": 8, "n_ctx": 128}),
    },
    description=(
        "GPT-J and CodeGen: transformer.h[i].{attn,mlp}, transformer.ln_f, transformer.wte; parallel attention "
        "and MLP from one ln_1, partial rotary. Attention probabilities and per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPTJ)
