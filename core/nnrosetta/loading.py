"""What must be known about a model before nnsight wraps it: its config and tokenizer.

The adapter is chosen from the config, so the config is read first (cheaply, for a
path or hub id); the tokenizer is loaded here because nnsight cannot guess it from
a local path with the current transformers release.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from .errors import NnrosettaError


def read_config(model: Any, load_kwargs: dict) -> PretrainedConfig:
    """The HuggingFace config of a model object, a local folder, or a hub id."""
    if isinstance(model, torch.nn.Module):
        config = getattr(model, "config", None)
        if config is None:
            raise NnrosettaError(
                f"the {type(model).__name__} passed has no `.config`; expected a HuggingFace "
                f"PreTrainedModel. Load it with AutoModelForCausalLM.from_pretrained(...) first."
            )
        return config
    if not isinstance(model, (str, os.PathLike)):
        raise NnrosettaError(
            f"expected a hub id, a local folder or a PreTrainedModel, got {type(model).__name__}."
        )
    if load_kwargs.get("config") is not None:
        return load_kwargs["config"]
    options = {k: load_kwargs[k] for k in ("revision", "trust_remote_code", "token") if k in load_kwargs}
    try:
        return AutoConfig.from_pretrained(str(model), **options)
    except (OSError, ValueError) as error:
        raise NnrosettaError(
            f"could not read a model config from {str(model)!r}: {error}. Pass a folder that holds "
            f"a config.json (as written by save_pretrained), a reachable hub id, or a model object."
        ) from error


def class_names(model: Any, config: PretrainedConfig) -> list[str]:
    """Class names an adapter may claim: the object's class, then the config's architectures."""
    names = [type(model).__name__] if isinstance(model, torch.nn.Module) else []
    return names + list(getattr(config, "architectures", None) or [])


def load_tokenizer(model: Any, load_kwargs: dict) -> Optional[Any]:
    """The tokenizer saved beside the model, or a clear error saying to pass one."""
    source = model if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", None)
    if not source:
        raise NnrosettaError(
            f"no tokenizer was given for the {type(model).__name__} object and it records no "
            f"name_or_path to load one from; pass tokenizer=AutoTokenizer.from_pretrained(...)."
        )
    options = {k: load_kwargs[k] for k in ("revision", "trust_remote_code", "token") if k in load_kwargs}
    try:
        return AutoTokenizer.from_pretrained(str(source), **options)
    except (OSError, ValueError, TypeError) as error:
        raise NnrosettaError(
            f"could not load a tokenizer from {str(source)!r}: {error}. Save one beside the model "
            f"(tokenizer.save_pretrained(folder)) or pass tokenizer=... explicitly."
        ) from error


TINY_PREFIX = "tiny:"


def tiny_target(model: Any, tokenizer: Any, adapter: Any, registry: Any) -> tuple[Any, Any]:
    """``"tiny:<model_type>"``: a seeded random-weight tiny model of that type and its tokenizer.

    Anything else is passed through unchanged. The same targets work in the CLI,
    the pytest plugin and here, so an example can be tried without a checkpoint.
    """
    if not (isinstance(model, str) and model.startswith(TINY_PREFIX)):
        return model, tokenizer
    from .tiny import build_tiny

    model_type = model[len(TINY_PREFIX):]
    chosen = registry.resolve(model_type, (), adapter) if adapter is not None else None
    if chosen is None:
        from .tiny import adapter_for

        chosen = adapter_for(model_type, registry)
    built, tiny_tokenizer = build_tiny(model_type, chosen)
    return built, tokenizer if tokenizer is not None else tiny_tokenizer
