"""nnterp's ``prompt_utils``: prompts with target tokens, and their probabilities over a batch.

`Prompt`, `next_token_probs` and `run_prompts` are nnrosetta's own (`run_prompts`
here also takes nnterp's ``tqdm`` and ``func_kwargs``). `get_first_tokens` takes a
word or a list of words and returns one list of first tokens, as nnterp's does.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch

from ..prompts import Prompt, first_tokens, next_token_probs
from ..prompts import run_prompts as _run_prompts

__all__ = ["Prompt", "get_first_tokens", "next_token_probs", "run_prompts"]


def get_first_tokens(words: Union[str, Sequence[str]], llm_or_tokenizer: Any) -> list[int]:
    """The first token of each word, with and without a leading space, each id once, in order."""
    tokenizer = getattr(llm_or_tokenizer, "tokenizer", llm_or_tokenizer)
    found: list[int] = []
    for word in [words] if isinstance(words, str) else list(words):
        found.extend(token for token in first_tokens(word, tokenizer) if token not in found)
    return found


def run_prompts(
    nn_model: Any,
    prompts: Sequence[Prompt],
    batch_size: int = 32,
    get_probs_func: Optional[Callable[..., torch.Tensor]] = None,
    func_kwargs: Optional[dict] = None,
    remote: bool = False,
    tqdm: Optional[Callable[[Iterable], Iterable]] = None,
    **kwargs: Any,
) -> dict[str, torch.Tensor]:
    """nnrosetta's `run_prompts`, also taking nnterp's ``func_kwargs`` (merged with ``**kwargs``)."""
    options = {**(func_kwargs or {}), **kwargs}
    return _run_prompts(nn_model, prompts, batch_size, get_probs_func, remote, tqdm=tqdm, **options)
