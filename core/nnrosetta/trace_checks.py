"""What a trace is given, checked before nnsight runs it.

nnsight hands a trace's keywords on to the model's forward, whose ``**kwargs``
swallows a misspelt one, and tokenizes prompts without looking at them: an empty
prompt becomes a row of pure padding, a long one runs past the learned positions.
Each of these is refused here, naming the value, the valid choices and the fix.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

import torch

from .config_sources import language_configs
from .errors import InvalidInputError, InvalidValueError

if TYPE_CHECKING:
    from .model import StandardizedTransformer

#: Keywords nnsight's own trace, generate and session calls take.
NNSIGHT_KEYWORDS = frozenset({"fn", "backend", "tracer_cls", "trace", "remote", "blocking", "job_id", "verbose"})

#: Config keys that hold the number of positions a model was built for, in the order they are tried.
POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


@functools.lru_cache(maxsize=None)
def _transformers_keywords() -> frozenset:
    from transformers.utils.generic import TransformersKwargs

    return frozenset(TransformersKwargs.__annotations__)


@functools.lru_cache(maxsize=None)
def _generation_keywords() -> frozenset:
    from transformers import GenerationConfig, GenerationMixin

    return frozenset(GenerationConfig().to_dict()) | frozenset(inspect.signature(GenerationMixin.generate).parameters)


def accepted_keywords(model: "StandardizedTransformer", generating: bool) -> frozenset:
    """Keywords a trace (or a generate) of ``model`` hands on to something that reads them."""
    forward = inspect.signature(model._module.forward).parameters
    names = {name for name, p in forward.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    pipeline = getattr(model, "pipeline", None)
    if pipeline is not None:
        names |= set(inspect.signature(pipeline._sanitize_parameters).parameters) - {"generate_kwargs"}
    names |= _transformers_keywords() | NNSIGHT_KEYWORDS
    if generating:
        names |= _generation_keywords()
    return frozenset(names - {"self", "kwargs"})


def check_keywords(model: "StandardizedTransformer", kwargs: Mapping[str, Any], generating: bool) -> None:
    """Refuse a keyword that neither the model's forward nor nnsight takes (a misspelt ``attention_mask``)."""
    accepted = accepted_keywords(model, generating)
    unknown = sorted(set(kwargs) - accepted)
    if not unknown:
        return
    import difflib

    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(accepted), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    call = "generate" if generating else "trace"
    forward = sorted(n for n in accepted - NNSIGHT_KEYWORDS - _transformers_keywords() - _generation_keywords())
    raise InvalidInputError(
        f"`model.{call}(...)` got the keyword {', '.join(hints)}, which neither "
        f"{type(model._module).__name__}.forward nor nnsight takes; it would be ignored. Keywords the forward "
        f"takes: {', '.join(forward)}. Fix the spelling or drop the keyword."
    )


def position_limit(config: Any) -> tuple[Optional[str], Optional[int]]:
    """The config key and value of the number of positions the model was built for (None, None if unknown)."""
    for source in language_configs(config):
        for key in POSITION_KEYS:
            value = getattr(source, key, None)
            if isinstance(value, int) and value > 0:
                return getattr(source, "attribute_map", {}).get(key, key), value
    return None, None


def check_length(model: "StandardizedTransformer", length: int, what: str) -> None:
    """Refuse a sequence longer than the model's positions (learned embeddings fail, rotary ones extrapolate)."""
    key, limit = position_limit(model.config)
    if limit is not None and length > limit:
        raise InvalidInputError(
            f"{what} is {length} tokens long, but the model has {key}={limit} positions; shorten it (or split "
            f"it) to at most {limit} tokens. Rotary positions can run past the trained length: to do so on "
            f"purpose, raise the limit first (`model.config.{key} = {length}`); learned position embeddings cannot."
        )


def check_prompts(model: "StandardizedTransformer", prompts: list[str]) -> None:
    """Every prompt tokenizes to at least one token and fits the model's positions."""
    if not prompts:
        raise InvalidInputError(
            "the trace was given an empty prompt list; pass a prompt string or a non-empty list of them "
            "(or open `model.trace()` with no input and add inputs with `tracer.invoke(...)`)."
        )
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise InvalidInputError(
                f"prompt {index} is a {type(prompt).__name__}, not a string; pass a list of strings, or token "
                f"ids as one integer tensor of shape (batch, seq)."
            )
    encoding = model.tokenizer(prompts)
    for index, ids in enumerate(encoding["input_ids"]):
        if len(ids) == 0:
            raise InvalidInputError(
                f"prompt {index} ({prompts[index]!r}) tokenizes to no tokens: its row would be pure padding and "
                f"its logits meaningless; pass a prompt with some text in it, or drop it."
            )
        check_length(model, len(ids), f"prompt {index}")


def check_token_ids(model: "StandardizedTransformer", ids: torch.Tensor, what: str = "input_ids") -> None:
    """Token ids are integers inside the vocabulary, in a non-empty (batch, seq) tensor that fits the positions."""
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise InvalidValueError(
            f"{what} has dtype {ids.dtype}; token ids must be an integer tensor. Convert with "
            f"`{what}.long()` (or pass the prompt text and let the tokenizer encode it)."
        )
    if ids.numel() == 0 or ids.shape[-1] == 0:
        raise InvalidInputError(
            f"{what} has shape {tuple(ids.shape)}: no tokens to run; pass at least one token id per row."
        )
    if ids.device.type == "meta":
        raise InvalidValueError(f"{what} is on the meta device (it holds no values); pass real token ids.")
    vocab = model.vocab_size
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        bad = low if low < 0 else high
        raise InvalidValueError(
            f"{what} holds the token id {bad}, outside the vocabulary of vocab_size={vocab}; use ids "
            f"0..{vocab - 1} (encode text with `model.tokenizer`)."
        )
    check_length(model, int(ids.shape[-1]), what)


def check_input(model: "StandardizedTransformer", data: Any) -> None:
    """Check one positional input of a trace or invoke: prompt text, token ids, or an encoding."""
    if isinstance(data, str):
        check_prompts(model, [data])
    elif isinstance(data, (list, tuple)) and (not data or all(isinstance(item, str) for item in data)):
        check_prompts(model, list(data))
    elif isinstance(data, torch.Tensor):
        check_token_ids(model, data)
    elif isinstance(data, Mapping) and isinstance(data.get("input_ids"), torch.Tensor):
        check_token_ids(model, data["input_ids"])
        mask = data.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.dim() == 2 and bool((mask.sum(dim=-1) == 0).any()):
            row = int((mask.sum(dim=-1) == 0).nonzero()[0])
            raise InvalidInputError(
                f"attention_mask row {row} is all zeros: that row is pure padding and its logits meaningless; "
                f"drop the row or give it at least one real token."
            )


def longest_input(model: "StandardizedTransformer", data: Any) -> int:
    """The longest row of an input, in tokens (0 when it is not text or token ids)."""
    if isinstance(data, str):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(item, str) for item in data):
        return max(len(ids) for ids in model.tokenizer(list(data))["input_ids"])
    if isinstance(data, Mapping):
        data = data.get("input_ids")
    return int(data.shape[-1]) if isinstance(data, torch.Tensor) and data.dim() else 0


def check_call(model: "StandardizedTransformer", inputs: Iterable[Any], kwargs: Mapping[str, Any], generating: bool) -> None:
    """All checks of a ``trace``/``generate``/``invoke`` call, before anything runs."""
    check_keywords(model, kwargs, generating)
    inputs = list(inputs)
    for data in inputs:
        check_input(model, data)
    ids = kwargs.get("input_ids")
    if isinstance(ids, torch.Tensor):
        check_token_ids(model, ids)
        inputs.append(ids)
    new_tokens = kwargs.get("max_new_tokens")
    if generating and isinstance(new_tokens, int) and inputs:
        longest = max(longest_input(model, data) for data in inputs)
        check_length(model, longest + new_tokens, f"the prompt ({longest} tokens) plus max_new_tokens={new_tokens}")
