"""nnrosetta plugin for GPT-J and CodeGen: ``transformer.h[i].{attn,mlp}``, ``transformer.ln_f``, ``transformer.wte``.

Both families share one block: a single ``ln_1`` feeds the attention and the MLP,
which run in parallel and are added to the layer input in one sum
(``attn_output + mlp_output + residual``), so ``mlps_input[i]`` is
``attentions_input[i]``, not ``layers_input[i] + attentions_output[i]``. Rotary
embedding (GPT-J's interleaved ``rotate_every_two``) covers only the first
``rotary_dim`` dimensions of each head.

Attention probabilities are served (the eager attention function's dropout
output). Per-head values are not declared, for the reasons in `NO_HEADS` and
`CODEGEN_NO_HEADS`.
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, Residual, Variant, conventions, hookimpl

NNROSETTA_CONTRACT = 2

MODEL_TYPES = ("gptj", "codegen")

RENAME = {
    "transformer.wte": "embed_tokens",
    "transformer.h": "layers",
    "transformer.ln_f": "ln_final",
    "attn": "self_attn",
}

#: Why GPT-J declares no `HeadsSpec`.
NO_HEADS = (
    "per-head values are not declared: before rotary this forward holds queries and keys as "
    "(batch, seq, heads, head_dim) (`self.q_proj(h).view(...)`, transposed only after rotary), and a HeadsSpec "
    "point must be (batch, heads, seq, head_dim); there is no fused projection to split either"
)

#: Why CodeGen declares no `HeadsSpec`.
CODEGEN_NO_HEADS = (
    "per-head values are not declared: `qkv_proj` is laid out per model-parallel shard (4 shards, each "
    "[queries | values | keys] of its heads), which neither fused layout ('blocks', 'per_head') describes, "
    "and the per-head assignments before rotary are (batch, seq, heads, head_dim), not (batch, heads, seq, head_dim)"
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
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    variants={
        "gptj": Variant(notes=NO_HEADS),
        # 8 heads of 16: two heads in each of the 4 model-parallel shards of qkv_proj.
        "codegen": Variant(tiny_config={"n_embd": 128, "n_head": 8, "n_ctx": 128}, notes=CODEGEN_NO_HEADS),
    },
    description=(
        "GPT-J and CodeGen: transformer.h[i].{attn,mlp}, transformer.ln_f, transformer.wte; parallel attention "
        "and MLP from one ln_1, partial rotary. Attention probabilities; no per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(GPTJ)
