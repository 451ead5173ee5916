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

from .errors import ModelLoadError, NnrosettaError


def read_config(model: Any, load_kwargs: dict) -> PretrainedConfig:
    """The HuggingFace config of a model object, a local folder, or a hub id (load options checked first)."""
    check_dtype(load_kwargs)
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


#: dtype names that are not attributes of torch but that HuggingFace loading takes.
DTYPE_WORDS = ("auto",)


def check_dtype(load_kwargs: dict) -> None:
    """``dtype=`` (or ``torch_dtype=``) names a torch dtype, before anything is loaded."""
    for key in ("dtype", "torch_dtype"):
        value = load_kwargs.get(key)
        if value is None or isinstance(value, torch.dtype):
            continue
        name = value.removeprefix("torch.") if isinstance(value, str) else None
        if name in DTYPE_WORDS or isinstance(getattr(torch, name or "", None), torch.dtype):
            continue
        raise ModelLoadError(
            f"{key}={value!r} is not a torch dtype; use one of 'auto', 'float32', 'bfloat16', 'float16' "
            f"(or a torch.dtype such as torch.bfloat16)."
        )


def load_error(error: BaseException, model: Any, load_kwargs: dict) -> Optional[NnrosettaError]:
    """A one-line nnrosetta error for a checkpoint that HuggingFace could not load, or None to re-raise as is."""
    from safetensors import SafetensorError

    folder = str(model) if isinstance(model, (str, os.PathLike)) and os.path.isdir(str(model)) else None
    if isinstance(error, SafetensorError):
        broken = _unreadable_weight_file(folder) if folder else None
        where = f"the weight file {broken!r}" if broken else f"a weight file of {str(model)!r}"
        return ModelLoadError(
            f"{where} cannot be read ({error}): it is truncated or corrupt. Re-download it, or re-save the "
            f"model with save_pretrained."
        )
    if "ignore_mismatched_sizes" in str(error) and folder:
        mismatch = _first_size_mismatch(folder, load_kwargs)
        detail = f": {mismatch}" if mismatch else ""
        return ModelLoadError(
            f"the weights in {folder!r} do not have the sizes its config.json gives{detail}. Fix config.json to "
            f"the checkpoint's sizes (or pass ignore_mismatched_sizes=True to re-initialise those tensors randomly)."
        )
    return None


def _weight_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".safetensors"))


def _unreadable_weight_file(folder: str) -> Optional[str]:
    from safetensors import SafetensorError, safe_open

    for path in _weight_files(folder):
        try:
            with safe_open(path, "pt") as handle:
                handle.keys()
        except (SafetensorError, OSError):
            return path
    return None


def _first_size_mismatch(folder: str, load_kwargs: dict) -> Optional[str]:
    """``name is [a, b] in the checkpoint, the config builds [c, d] (n tensors differ)``, or None."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    try:
        config = read_config(folder, load_kwargs)
        with torch.device("meta"):
            built = {k: tuple(v.shape) for k, v in AutoModelForCausalLM.from_config(config).state_dict().items()}
        stored = {}
        for path in _weight_files(folder):
            with safe_open(path, "pt") as handle:
                stored.update({key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()})
    except Exception:  # the summary is a courtesy: never hide the load error behind a second one
        return None
    differing = [k for k in stored if k in built and stored[k] != built[k]]
    if not differing:
        return None
    first = differing[0]
    return (
        f"{first} is {list(stored[first])} in the checkpoint, the config builds {list(built[first])} "
        f"({len(differing)} tensors differ)"
    )


#: Load keywords from_pretrained takes beside a config object: with only these, the config
#: already read can be handed on (any other keyword may be a config override, which
#: from_pretrained applies only while it reads the config itself).
CONFIG_FREE_LOAD_KEYWORDS = frozenset({
    "dispatch", "task", "dtype", "torch_dtype", "device_map", "max_memory", "attn_implementation",
    "revision", "trust_remote_code", "token", "local_files_only", "config",
})


def reuse_config(model: Any, config: PretrainedConfig, load_kwargs: dict) -> None:
    """Hand nnsight the config already read, for a folder or hub id loaded at once.

    Given a config, nnsight loads with ``from_pretrained`` and wraps the module in a
    pipeline that is built around it, where a bare id has the pipeline factory read the
    folder again (config, generation config, model card): about 20 ms of a 250 ms load
    of a 135M model. The weights and the module are the same either way.
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    if isinstance(model, torch.nn.Module) or load_kwargs.get("dispatch") is not True:
        return
    # Given a config, nnsight loads with the task's auto class; the pipeline factory also tries the
    # config's `architectures`, which serves configs that class does not map (a composite's text config).
    if load_kwargs.get("task") != "text-generation" or type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        return
    if set(load_kwargs) <= CONFIG_FREE_LOAD_KEYWORDS:
        load_kwargs.setdefault("config", config)


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
