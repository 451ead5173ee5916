"""A third-party nnrosetta plugin, written the way an adapter author would: GPT-NeoX.

GPT-NeoX (Pythia) keeps its blocks at ``gpt_neox.layers``, each with ``attention``
and ``mlp``, the final norm at ``gpt_neox.final_layer_norm`` and the embedding at
``gpt_neox.embed_in``. Its attention and MLP run in parallel on the same input;
the adapter declares that (``Residual(kind="parallel")``) and the conformance
suite proves it.
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, Residual, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "gpt_neox.embed_in": "embed_tokens",
    "gpt_neox.layers": "layers",
    "gpt_neox.final_layer_norm": "ln_final",
    "attention": "self_attn",
}

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
}

EXAMPLE = Adapter(
    name="example",
    model_types=("gpt_neox",),
    rename=RENAME,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    residual=Residual(kind="parallel"),
    tiny_config=TINY,
    # Below the project's own plugins: this example serves gpt_neox only when asked for by name.
    priority=-1,
    description="Worked example of a third-party adapter: GPT-NeoX (gpt_neox.layers[i].{attention,mlp}).",
)


@hookimpl
def register_adapters(register) -> None:
    register(EXAMPLE)
