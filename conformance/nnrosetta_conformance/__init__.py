"""The nnrosetta conformance suite: proves a model is served correctly by its adapter."""

from .tiny import build_tiny, build_tokenizer, claimed_tiny_types, save_tiny, tiny_config

__all__ = ["build_tiny", "build_tokenizer", "claimed_tiny_types", "save_tiny", "tiny_config"]
