"""Target prompts for patchscopes: a prompt and the token whose hidden state is replaced.

`index_to_patch` indexes the target prompt's own tokens (negative from the end,
so -1 is its last token) whatever left padding a batch adds; it is turned into
a padded position only when the batch is encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence, Union

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

    def __getitem__(self, index: Union[int, slice]) -> Union[TargetPrompt, "TargetPromptBatch"]:
        """``batch[i]`` is the i-th `TargetPrompt`; ``batch[i:j]`` a smaller batch."""
        if isinstance(index, slice):
            return TargetPromptBatch(self.prompts[index], self.index_to_patch[index])
        if isinstance(index, bool) or not isinstance(index, int) or not -len(self) <= index < len(self):
            raise LayerIndexError(
                f"target prompt index {index!r} is out of range for a batch of {len(self)}; "
                f"use 0..{len(self) - 1} (or negative indices)."
            )
        return TargetPrompt(self.prompts[index], self.index_to_patch[index])

    def __iter__(self) -> Iterator[TargetPrompt]:
        return (TargetPrompt(p, i) for p, i in zip(self.prompts, self.index_to_patch))

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
    def auto(cls, targets: Union[str, TargetPrompt, Sequence[TargetPrompt], "TargetPromptBatch", None], batch_size: int) -> "TargetPromptBatch":
        """A batch of ``batch_size`` rows from whatever was given (see `coerce`); a bare string is its own last token."""
        if isinstance(targets, str):
            targets = TargetPrompt(targets, -1)
        return cls.coerce(targets, batch_size)

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


#: The user turn of `it_repeat_prompt`: the assistant's reply then shows the repetitions.
DEFAULT_REPEAT_INSTRUCTION = "Repeat each word after me."


def it_repeat_prompt(
    tokenizer: Any,
    words: Optional[Sequence[str]] = None,
    relation: str = " ",
    separator: str = "\n",
    placeholder: str = "?",
    instruction: str = DEFAULT_REPEAT_INSTRUCTION,
) -> TargetPrompt:
    """`repeat_prompt` for chat (instruction-tuned) models, through the tokenizer's chat template.

    A user turn asks for repetition; the assistant's reply is prefilled with the
    examples and ends on the placeholder (``continue_final_message``), so the
    prompt still ends on the placeholder token and is patched at -1, as the base
    model's identity prompt is. A leading BOS that the template writes and the
    tokenizer adds again is dropped, so the encoded prompt has one.
    A template that cannot end on a prefilled reply is refused.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError(
            f"{type(tokenizer).__name__} has no chat_template, so there is no chat form of the identity "
            f"prompt; use repeat_prompt() for a base model, or set tokenizer.chat_template first."
        )
    reply = repeat_prompt(words, relation, separator, placeholder).prompt
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": reply}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    except ValueError as error:
        raise InvalidInputError(
            f"the chat template of {type(tokenizer).__name__} cannot end on a prefilled assistant reply "
            f"({error}); build the TargetPrompt by hand, ending on the placeholder."
        ) from error
    bos = getattr(tokenizer, "bos_token", None)
    added = tokenizer("x")["input_ids"][:1] == [getattr(tokenizer, "bos_token_id", None)]
    if bos and added and text.startswith(bos):
        text = text[len(bos) :]
    return TargetPrompt(text, -1)
