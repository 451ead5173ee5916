"""What the BERT-family declarations cannot serve: refused configs, with why.

A refusal is a config of a served type that takes a path the declaration does not
serve (bidirectional attention, block-sparse attention, X-MOD's pre-norm layout);
it is refused at load with the reason.
"""

from __future__ import annotations

from typing import Optional


def needs_decoder(config) -> Optional[str]:
    """HuggingFace's BERT-style layers are causal only with ``is_decoder=True``."""
    if not getattr(config, "is_decoder", False):
        return (
            "config.is_decoder is False: the layers then attend bidirectionally (every token sees later ones), "
            "which is no causal language model; load it with "
            "config=AutoConfig.from_pretrained(<model>, is_decoder=True)"
        )
    return None


def needs_full_attention(config) -> Optional[str]:
    """BigBird as a causal LM: full attention only."""
    if getattr(config, "attention_type", "original_full") != "original_full":
        return (
            f"attention_type={config.attention_type!r}: BigBird's block-sparse attention is bidirectional and "
            "the model swaps its attention modules for full ones at run time on short inputs; load it with "
            "config=AutoConfig.from_pretrained(<model>, attention_type='original_full', is_decoder=True)"
        )
    return needs_decoder(config)


def needs_post_norm_xmod(config) -> Optional[str]:
    """X-MOD's post-norm layout (``pre_norm=False``) only."""
    if getattr(config, "pre_norm", False):
        return (
            "pre_norm=True: X-MOD then normalises before the MLP with output.LayerNorm and ends in "
            "encoder.LayerNorm, a layout this declaration does not serve (it serves pre_norm=False, the "
            "released checkpoints' layout)"
        )
    return needs_decoder(config)

