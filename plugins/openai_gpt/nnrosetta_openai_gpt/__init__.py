"""nnrosetta plugin for the original GPT (``openai-gpt``): ``transformer.h[i].{attn,mlp}``, ``transformer.tokens_embed``.

GPT-1 is post-norm: each block computes ``n = ln_1(x + attn(x))`` and
``h = ln_2(n + mlp(n))``, so the attention reads the layer input itself (no norm
before it), ``mlps_input[i]`` is ``ln_1``'s output, and nothing is added to the
residual stream as is. There is no final norm: the logits are
``lm_head(layers_output[-1])``, so ``ln_final`` is declared absent and
``project_on_vocab`` applies ``lm_head`` alone. ``token_embeddings`` is
``tokens_embed``'s output; layer 0 reads it plus the learned position embedding.

Attention runs in the module's own ``_attn`` (keys pre-transposed to (batch, heads,
head_dim, seq), the causal mask from its ``bias`` buffer); its probabilities are
served, and per-head values split out of ``c_attn`` (`HEADS`).
"""

from __future__ import annotations

from nnrosetta import Adapter, AttentionSpec, Called, ConfigKeys, HeadsSpec, Inside, Residual, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "transformer.tokens_embed": "embed_tokens",
    "transformer.h": "layers",
    "attn": "self_attn",
}

#: The probabilities ``_attn`` multiplies the values by: its dropout module's output.
ATTENTION = AttentionSpec(probabilities=Inside(Called("self._attn"), Called("self.attn_dropout")))

#: Like GPT-2, ``c_attn`` holds [all queries | all keys | all values]; the core splits it (no rotary).
#: No attention call: ``_attn`` receives keys pre-transposed to (batch, heads, head_dim, seq) and
#: masks with its ``bias`` buffer and -1e4, so rotated values and recomputed patterns are refused.
HEADS = HeadsSpec(fused_projection="c_attn", fused_layout="blocks", output_projection="c_proj", attention_call=None)

#: Post-norm blocks end in ln_2; the model applies no norm after the last block.
NO_FINAL_NORM = "post-norm blocks: each ends in its own ln_2 and the logits are lm_head(layers_output[-1])"

TINY = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128}

OPENAI_GPT = Adapter(
    name="openai_gpt",
    model_types=("openai-gpt",),
    rename=RENAME,
    config_keys=ConfigKeys(
        num_layers="n_layer",
        num_heads="n_head",
        num_kv_heads=None,
        head_dim=None,
        hidden_size="n_embd",
        vocab_size="vocab_size",
    ),
    attention=ATTENTION,
    heads=HEADS,
    residual=Residual(kind="post_norm"),
    absent={"ln_final": NO_FINAL_NORM},
    tiny_config=TINY,
    description=(
        "The original GPT (openai-gpt): transformer.h[i].{attn,mlp}, transformer.tokens_embed; post-norm "
        "blocks, no final norm. Attention probabilities and per-head values."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(OPENAI_GPT)
