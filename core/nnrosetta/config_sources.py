"""Where a config value of the served language model is read: its text config first, then the top level.

A multimodal checkpoint keeps the language model's sizes in its text config; the top
level may hold attributes of the same names that describe something else, or copies
written when the config was built that a saved or edited text config no longer matches.
The causal LM is built from the text config, so its values win.
"""

from __future__ import annotations

from typing import Any


def language_configs(config: Any) -> tuple[Any, ...]:
    """The text config then the top-level config (one entry when they are the same object)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return (config,) if text is config else (text, config)
