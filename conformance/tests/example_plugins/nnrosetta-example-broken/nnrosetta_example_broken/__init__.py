"""A deliberately broken GPT-NeoX adapter: each mistake should fail exactly its check.

- ``self_attn`` points at the fused query/key/value projection inside the attention,
  not the attention module: `attentions_output` is (batch, seq, 3 * hidden), so
  ``accessor_shapes`` fails, and editing it with a hidden-sized vector fails in
  ``write_effect`` (declared known broken here, so it is an expected failure).
- ``final_projection`` forgets the final layer norm: ``final_projection`` fails.
- ``residual_chain`` is declared known broken but works: the suite reports the stale
  declaration as an unexpected pass, which fails the run.

It claims ``gpt_neox`` with a lower priority than any other adapter, so it is
only used when asked for by name (``adapter="example_broken"``).
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, Residual, hookimpl

NNROSETTA_CONTRACT = 2


def projection_without_final_norm(model, hidden):
    return model.lm_head(hidden)


BROKEN = Adapter(
    name="example_broken",
    model_types=("gpt_neox",),
    rename={
        "gpt_neox.embed_in": "embed_tokens",
        "gpt_neox.layers": "layers",
        "gpt_neox.final_layer_norm": "ln_final",
        "attention.query_key_value": "self_attn",
    },
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    final_projection=projection_without_final_norm,
    residual=Residual(kind="parallel"),
    tiny_config={
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 128,
    },
    known_broken={
        "write_effect": "self_attn is the fused qkv projection, wider than the residual stream",
        "residual_chain": "we feared the parallel residual breaks it (it does not)",
    },
    priority=-2,
    description="Deliberately broken GPT-NeoX adapter (conformance suite demonstration).",
)


@hookimpl
def register_adapters(register) -> None:
    register(BROKEN)
