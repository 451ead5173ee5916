"""nnrosetta plugin for CTRL: ``transformer.h[i].{multi_head_attention,ffn}``, ``transformer.layernorm``, ``transformer.w``.

An old-style layout with modern pre-norm blocks: ``out1 = x + attn(layernorm1(x))``,
``out2 = out1 + ffn(layernorm2(out1))``, and a final ``transformer.layernorm``
before ``lm_head`` (which has a bias). Two choices matter when reading it:

- ``token_embeddings`` is ``w``'s output, unscaled: the model multiplies it by
  ``sqrt(n_embd)`` outside the embedding module and adds a sinusoidal position
  table, so ``layers_input[0] = token_embeddings * sqrt(n_embd) + positions``. The
  multiplication is in place (``inputs_embeds *= ...``): a saved reference to
  ``token_embeddings`` holds the scaled values after the forward (save a
  ``.clone()`` for the unscaled ones), and a leaf tensor that requires grad cannot
  be written there (write ``leaf * 1`` or a clone).
- The attention is called ``multi_head_attention(v, k, q)`` with the same normed
  tensor three times; ``attentions_input[i]`` is the first of them (``v``), and
  writing it replaces the values' input only (queries and keys keep theirs).
"""

from __future__ import annotations

from nnrosetta import Adapter, ConfigKeys, conventions, hookimpl

NNROSETTA_CONTRACT = 2

RENAME = {
    "transformer.w": "embed_tokens",
    "transformer.h": "layers",
    "transformer.layernorm": "ln_final",
    "multi_head_attention": "self_attn",
    "ffn": "mlp",
}

TINY = {"n_embd": 64, "n_layer": 2, "n_head": 4, "dff": 128, "n_positions": 128}

CTRL = Adapter(
    name="ctrl",
    model_types=("ctrl",),
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
    heads=conventions.heads(output_projection="dense", rotary=False),
    tiny_config=TINY,
    description=(
        "CTRL: transformer.h[i].{multi_head_attention,ffn}, transformer.layernorm, transformer.w; pre-norm "
        "blocks, embeddings scaled by sqrt(n_embd) outside the embedding module."
    ),
)


@hookimpl
def register_adapters(register) -> None:
    register(CTRL)
