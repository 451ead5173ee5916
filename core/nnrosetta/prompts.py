"""Prompts with target tokens, and the probability a model gives each group of targets.

A researcher asks "how likely is ' Paris' (vs ' London', ' Madrid') after this
prompt, and at which layer does it appear?". `Prompt.from_strings` turns target
words into the first token of each (with and without a leading space, as the
tokenizer splits them) and `run_prompts` sums their probabilities per category,
from the output or per layer with ``get_probs_func=logit_lens``.
"""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass, field
from itertools import chain
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import torch

from .errors import InvalidInputError
from .interventions.inputs import Prompts, encode, prompt_list
from .remote import as_one_job

if TYPE_CHECKING:
    from .model import StandardizedTransformer

ProbsFunction = Callable[..., torch.Tensor]
Targets = Union[str, Sequence[str], Mapping[str, Union[str, Sequence[str]]]]


def first_tokens(word: str, tokenizer: Any) -> tuple[int, ...]:
    """The first token of ``word`` and of ``" " + word``, skipping tokens that are only whitespace.

    Sentencepiece tokenizers may split " Paris" into a lone space marker and "Paris"
    (or "▁Paris"); the space marker is no prediction of the word, so it is skipped.
    """
    stripped = word.strip() if isinstance(word, str) else ""
    found: list[int] = []
    for variant in (stripped, " " + stripped):
        if not stripped:
            break
        ids = tokenizer(variant, add_special_tokens=False)["input_ids"]
        meaningful = [i for i in ids if tokenizer.decode([i]).strip()]
        if meaningful and meaningful[0] not in found:
            found.append(meaningful[0])
    if not found:
        raise InvalidInputError(
            f"target {word!r} tokenizes to nothing but whitespace (or nothing at all), so it has no "
            f"first token to score; pass a target with visible text."
        )
    return tuple(found)


@dataclass(frozen=True)
class Prompt:
    """A prompt and, per category, the token ids whose probabilities are summed."""

    prompt: str
    target_tokens: Mapping[str, tuple[int, ...]]
    target_strings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tokens = {c: tuple(int(i) for i in ([ids] if isinstance(ids, int) else ids)) for c, ids in self.target_tokens.items()}
        strings = {c: (words,) if isinstance(words, str) else tuple(words) for c, words in (self.target_strings or {}).items()}
        object.__setattr__(self, "target_tokens", MappingProxyType(tokens))
        object.__setattr__(self, "target_strings", MappingProxyType(strings))

    @classmethod
    def from_strings(cls, prompt: str, targets: Targets, tokenizer: Any) -> "Prompt":
        """``Prompt.from_strings("... is", {"target": "Paris", "other": ["London", "Madrid"]}, tokenizer)``.

        A bare word or list of words is the single category ``"target"``.
        """
        (prompt,) = prompt_list(prompt, "prompt")
        if isinstance(targets, str) or (isinstance(targets, abc.Sequence) and not isinstance(targets, abc.Mapping)):
            targets = {"target": targets}
        if not targets:
            raise InvalidInputError("no target categories were given; pass e.g. {'target': 'Paris'}.")
        tokens: dict[str, tuple[int, ...]] = {}
        strings: dict[str, tuple[str, ...]] = {}
        for category, words in targets.items():
            items = [words] if isinstance(words, str) else list(words)
            if not items:
                raise InvalidInputError(f"target category {category!r} is empty; give it at least one word.")
            ids: list[int] = []
            for word in items:
                ids.extend(i for i in first_tokens(word, tokenizer) if i not in ids)
            tokens[category] = tuple(ids)
            strings[category] = tuple(items)
        return cls(prompt, tokens, strings)

    def get_target_probs(self, probs: torch.Tensor, layer: Optional[int] = None) -> dict[str, torch.Tensor]:
        """Per category, ``probs[..., ids].sum(-1)`` for a (..., vocab) probability tensor.

        ``layer`` picks one layer of a (..., layers, vocab) tensor (a logit lens) first.
        """
        if layer is not None:
            if probs.dim() < 2:
                raise InvalidInputError(
                    f"layer={layer} needs probabilities of shape (..., layers, vocab), got {tuple(probs.shape)}."
                )
            probs = probs.select(-2, layer)
        return {c: probs[..., list(ids)].sum(dim=-1) for c, ids in self.target_tokens.items()}

    def has_no_collisions(self, ignore_targets: Union[str, Sequence[str], None] = None) -> bool:
        """True when no token id is scored by two categories (leaving out ``ignore_targets``)."""
        ignored = {ignore_targets} if isinstance(ignore_targets, str) else set(ignore_targets or ())
        unknown = ignored - set(self.target_tokens)
        if unknown:
            raise InvalidInputError(
                f"ignore_targets names {sorted(unknown)}, which are not categories of this prompt "
                f"({', '.join(self.target_tokens)})."
            )
        ids = list(chain.from_iterable(v for c, v in self.target_tokens.items() if c not in ignored))
        return len(ids) == len(set(ids))

    def run(self, model: "StandardizedTransformer", get_probs: Optional[ProbsFunction] = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """``get_target_probs(get_probs(model, self.prompt, **kwargs))``; default the next-token probabilities.

        The result keeps the batch dimension of one prompt: (1,) per category for the
        default, (1, layers) for `logit_lens`.
        """
        return self.get_target_probs((get_probs or next_token_probs)(model, self.prompt, **kwargs))


def next_token_probs(model: "StandardizedTransformer", prompts: Prompts, remote: bool = False) -> torch.Tensor:
    """The model's next-token probabilities after each prompt, (batch, vocab)."""
    encoding = encode(model, prompt_list(prompts))
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(encoding, remote=remote):
        saved.append(model.next_token_probs.save())
    return saved[0]


def run_prompts(
    model: "StandardizedTransformer",
    prompts: Sequence[Prompt],
    batch_size: int = 32,
    get_probs_func: Optional[ProbsFunction] = None,
    remote: bool = False,
    tqdm: Optional[Callable[[Iterable], Iterable]] = None,
    **func_kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Per category, the summed target probability for each prompt, in batches.

    ``get_probs_func(model, prompt_strings, remote=remote, **func_kwargs)`` returns
    (batch, ..., vocab) probabilities: the default is the model's next-token
    probabilities, giving (prompts,) per category; `logit_lens` gives (prompts, layers).
    ``tqdm`` (e.g. ``tqdm.tqdm``) wraps the batches for a progress bar.
    """
    items = list(prompts)
    if not items:
        raise InvalidInputError("run_prompts got no prompts; pass a non-empty list of Prompt objects.")
    for index, item in enumerate(items):
        if not isinstance(item, Prompt):
            raise InvalidInputError(
                f"prompts[{index}] is a {type(item).__name__}, not a Prompt; build it with Prompt.from_strings."
            )
    categories = list(items[0].target_tokens)
    for index, item in enumerate(items):
        if list(item.target_tokens) != categories:
            raise InvalidInputError(
                f"prompts[{index}] has target categories {list(item.target_tokens)} but prompts[0] has "
                f"{categories}; give every prompt the same categories, in the same order."
            )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size={batch_size!r} must be a positive int.")
    for item in items:  # every prompt must tokenize before the first batch runs
        encode(model, [item.prompt])
    if remote:  # every batch goes in one request
        return as_one_job(model, remote, run_prompts, items, batch_size, get_probs_func, **func_kwargs)
    function = get_probs_func or next_token_probs
    results: dict[str, list[torch.Tensor]] = {c: [] for c in categories}
    starts = range(0, len(items), batch_size)
    for start in tqdm(starts) if tqdm else starts:
        batch = items[start : start + batch_size]
        probs = function(model, [p.prompt for p in batch], remote=remote, **func_kwargs)
        for row, item in enumerate(batch):
            for category, value in item.get_target_probs(probs[row]).items():
                results[category].append(value)
    return {c: torch.stack(values) for c, values in results.items()}
