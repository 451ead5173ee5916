"""Offline tiny models (kept here for the suite's users; they live in `nnrosetta.tiny`)."""

from nnrosetta.tiny import (  # noqa: F401
    CORPUS,
    SPECIAL_TOKENS,
    TOKENIZER_VOCAB_SIZE,
    adapter_for,
    build_tiny,
    build_tokenizer,
    claimed_tiny_types,
    randomize_constant_parameters,
    save_tiny,
    tiny_config,
)
