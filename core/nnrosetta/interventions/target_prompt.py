"""Target prompts for patchscopes: a prompt and the token whose hidden state is replaced.

`index_to_patch` indexes the target prompt's own tokens (negative from the end,
so -1 is its last token) whatever left padding a batch adds; it is turned into
a padded position only when the batch is encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

from ..errors import InvalidInputError, LayerIndexError
from .inputs import encode, prompt_list

if TYPE_CHECKING:
    from ..model import StandardizedTransformer

#: Words of the default identity prompt: the model learns in context to repeat the last word.
DEFAULT_REPEAT_WORDS = ("cat", "1135", "hello")


@dataclass(frozen=True)
class TargetPrompt:
    """One target prompt and the index (in its own tokens) of the token to patch."""

    prompt: str
    index_to_patch: int = -1


@dataclass(frozen=True)
class TargetPromptBatch:
    """Several target prompts, each with the index of its token to patch."""

    prompts: tuple[str, ...]
    index_to_patch: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(prompt_list(self.prompts, "target prompts")))
        object.__setattr__(self, "index_to_patch", tuple(int(i) for i in self.index_to_patch))
        if len(self.index_to_patch) != len(self.prompts):
            raise InvalidInputError(
                f"TargetPromptBatch has {len(self.prompts)} prompts but {len(self.index_to_patch)} "
                f"indices to patch; give one index per prompt."
            )

    def __len__(self) -> int:
        return len(self.prompts)

    @classmethod
    def from_target_prompts(cls, prompts: Sequence[TargetPrompt]) -> "TargetPromptBatch":
        """A batch of several `TargetPrompt`s."""
        items = list(prompts)
        if not items:
            raise InvalidInputError("no target prompts were given; pass at least one TargetPrompt.")
        return cls(tuple(p.prompt for p in items), tuple(p.index_to_patch for p in items))

    @classmethod
    def from_target_prompt(cls, prompt: TargetPrompt, batch_size: int) -> "TargetPromptBatch":
        """One `TargetPrompt` repeated ``batch_size`` times."""
        return cls((prompt.prompt,) * batch_size, (prompt.index_to_patch,) * batch_size)

    @classmethod
    def from_prompts(cls, prompts: Union[str, Sequence[str]], index_to_patch: Union[int, Sequence[int]] = -1) -> "TargetPromptBatch":
        """Prompts sharing one index to patch (an int) or each with its own (a list)."""
        items = prompt_list(prompts, "target prompts")
        indices = [index_to_patch] * len(items) if isinstance(index_to_patch, int) else list(index_to_patch)
        return cls(tuple(items), tuple(indices))

    @classmethod
    def coerce(
        cls, targets: Union[TargetPrompt, Sequence[TargetPrompt], "TargetPromptBatch", None], count: int
    ) -> "TargetPromptBatch":
        """``targets`` as a batch of ``count`` rows: one target is repeated; None is `repeat_prompt()`."""
        if targets is None:
            targets = repeat_prompt()
        if isinstance(targets, TargetPrompt):
            return cls.from_target_prompt(targets, count)
        batch = targets if isinstance(targets, TargetPromptBatch) else cls.from_target_prompts(targets)
        if len(batch) == 1 and count > 1:
            return cls.from_target_prompt(TargetPrompt(batch.prompts[0], batch.index_to_patch[0]), count)
        if len(batch) != count:
            raise InvalidInputError(
                f"{len(batch)} target prompts were given for {count} source prompts (or latents); "
                f"give one target prompt (it is repeated) or exactly one per source."
            )
        return batch

    def encode(self, model: "StandardizedTransformer") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The left-padded encoding and, per row, the padded position of the token to patch."""
        encoding = encode(model, list(self.prompts), "target prompts")
        lengths = encoding["attention_mask"].sum(dim=-1).tolist()
        width = encoding["input_ids"].shape[1]
        positions = []
        for row, (length, index) in enumerate(zip(lengths, self.index_to_patch)):
            if not -length <= index < length:
                raise LayerIndexError(
                    f"target prompt {row} ({self.prompts[row]!r}) has {length} tokens, so "
                    f"index_to_patch={index} is out of range; use 0..{length - 1} or -1 for its last token."
                )
            positions.append(width - length + index % length)
        return encoding, torch.tensor(positions, dtype=torch.long)


def repeat_prompt(
    words: Optional[Sequence[str]] = None,
    relation: str = " ",
    separator: str = "\n",
    placeholder: str = "?",
) -> TargetPrompt:
    """The identity target prompt ("cat cat\\n1135 1135\\nhello hello\\n?"), patched at its last token.

    In context the model repeats each word, so a hidden state patched on the
    placeholder is decoded into the word it stands for.
    """
    items = list(DEFAULT_REPEAT_WORDS if words is None else words)
    if not items:
        raise InvalidInputError("repeat_prompt(words=[]) has no example to repeat; pass some words or None.")
    examples = separator.join(f"{word}{relation}{word}" for word in items)
    return TargetPrompt(f"{examples}{separator}{placeholder}", -1)
