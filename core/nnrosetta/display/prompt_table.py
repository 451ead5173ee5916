"""A table of prompts and their targets, one row per `Prompt`, for a notebook or a report."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..errors import InvalidInputError
from ..prompts import Prompt


def prompt_rows(prompts: Sequence[Prompt], tokenizer: Optional[Any] = None) -> list[dict[str, Any]]:
    """One dict per prompt: ``prompt``, then per category ``<category>_strings`` and ``<category>_tokens``.

    Tokens are ids, or their decoded text when a ``tokenizer`` is given (what a
    reader checks: that " Paris" and "Paris" both start the right way).
    """
    rows = []
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, Prompt):
            raise InvalidInputError(
                f"prompts[{index}] is a {type(prompt).__name__}, not a Prompt; build it with Prompt.from_strings."
            )
        row: dict[str, Any] = {"prompt": prompt.prompt}
        for category, ids in prompt.target_tokens.items():
            row[f"{category}_strings"] = list(prompt.target_strings.get(category, ()))
            row[f"{category}_tokens"] = [tokenizer.decode([i]) for i in ids] if tokenizer is not None else list(ids)
        rows.append(row)
    return rows
