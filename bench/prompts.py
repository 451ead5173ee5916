"""Text prompts of an exact token length, for the methods that take strings.

The benchmark models use the conformance tokenizer (a small byte-level BPE);
words that it encodes as one token each, joined with spaces, give prompts whose
token count is exactly the number of words, so a batch needs no padding and
clean and corrupted prompts line up position for position.
"""

from __future__ import annotations

import functools
import random

from nnrosetta_conformance.tiny import CORPUS, build_tokenizer


@functools.lru_cache(maxsize=1)
def single_token_words() -> tuple[str, ...]:
    """Words of the tokenizer's corpus that encode, with a leading space, to one token."""
    tokenizer = build_tokenizer()
    words = sorted({word.strip(".,;") for line in CORPUS for word in line.split()} - {""})
    return tuple(w for w in words if len(tokenizer(" " + w)["input_ids"]) == 1)


def prompts(batch: int, length: int, seed: int) -> list[str]:
    """``batch`` prompts of exactly ``length`` tokens each, drawn with ``seed``."""
    words = single_token_words()
    generator = random.Random(seed)
    texts = ["".join(" " + generator.choice(words) for _ in range(length)) for _ in range(batch)]
    tokenizer = build_tokenizer()
    lengths = {len(tokenizer(text)["input_ids"]) for text in texts}
    if lengths != {length}:
        raise RuntimeError(f"prompts meant to be {length} tokens long tokenize to lengths {sorted(lengths)}")
    return texts
