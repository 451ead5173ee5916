"""nnterp's ``interventions``: lenses, patchscopes and target prompts, with nnterp's arguments and results.

`logit_lens`, `patch_object_attn_lens`, `TargetPrompt` and `TargetPromptBatch`
are nnrosetta's own (same arguments, nnrosetta adds some). `patchscope_lens`
returns one row per entry of ``layers`` in the order given, repeats kept;
`patchscope_generate` patches several layers and returns token ids per layer;
`repeat_prompt` and `it_repeat_prompt` take nnterp's ``rel`` and ``sep``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch

from ..errors import InvalidInputError
from ..interventions.logit_lens import logit_lens
from ..interventions.object_attention import patch_object_attn_lens
from ..interventions.patchscope import Targets, patchscope_generate_ids, patchscope_lens_in_order
from ..interventions.target_prompt import DEFAULT_REPEAT_INSTRUCTION, TargetPrompt, TargetPromptBatch
from ..interventions.target_prompt import it_repeat_prompt as _it_repeat_prompt
from ..interventions.target_prompt import repeat_prompt as _repeat_prompt

if TYPE_CHECKING:
    from ..model import StandardizedTransformer

__all__ = [
    "TargetPrompt",
    "TargetPromptBatch",
    "it_repeat_prompt",
    "logit_lens",
    "patch_object_attn_lens",
    "patchscope_generate",
    "patchscope_lens",
    "repeat_prompt",
]


def repeat_prompt(
    words: Optional[Sequence[str]] = None, rel: str = " ", sep: str = "\n", placeholder: str = "?"
) -> TargetPrompt:
    """The identity prompt ``"cat cat\\n1135 1135\\nhello hello\\n?"``, patched at its last token."""
    return _repeat_prompt(words, relation=rel, separator=sep, placeholder=placeholder)


def it_repeat_prompt(
    tokenizer: Any,
    words: Optional[Sequence[str]] = None,
    rel: str = " ",
    sep: str = "\n",
    placeholder: str = "?",
    instruction: str = DEFAULT_REPEAT_INSTRUCTION,
) -> TargetPrompt:
    """The identity prompt in the tokenizer's chat template, the reply prefilled up to the placeholder."""
    return _it_repeat_prompt(tokenizer, words, relation=rel, separator=sep, placeholder=placeholder, instruction=instruction)


def patchscope_lens(
    nn_model: "StandardizedTransformer",
    source_prompts: Union[str, Sequence[str], None] = None,
    target_patch_prompts: Targets = None,
    layers: Union[int, Sequence[int], None] = None,
    latents: Optional[torch.Tensor] = None,
    remote: bool = False,
    batch_size: Optional[int] = None,
) -> torch.Tensor:
    """(sources, len(layers), vocab): row ``j`` is ``layers[j]``, in the order given, repeats kept."""
    return patchscope_lens_in_order(nn_model, source_prompts, target_patch_prompts, layers, latents, batch_size, remote)


def patchscope_generate(
    nn_model: "StandardizedTransformer",
    prompts: Union[str, Sequence[str], None],
    target_patch_prompt: Targets = None,
    max_length: int = 50,
    layers: Union[int, Sequence[int], None] = None,
    remote: bool = False,
    max_batch_size: int = 32,
    latents: Optional[torch.Tensor] = None,
    **generate_kwargs: Any,
) -> dict[int, torch.Tensor]:
    """Per layer (keys as given; default every layer), the greedy generation with that layer's latent patched in.

    Each value is ``generate``'s (prompts, target tokens + ``max_length`` new tokens) ids.
    ``max_batch_size`` bounds the rows of one ``generate``: as many layers share one as fit.
    """
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise InvalidInputError(f"max_batch_size={max_batch_size!r} must be a positive int (rows per generate).")
    count = latents.shape[0] if isinstance(latents, torch.Tensor) else len([prompts] if isinstance(prompts, str) else list(prompts or []))
    layers_per_pass = max(max_batch_size // max(count, 1), 1)
    return patchscope_generate_ids(
        nn_model, prompts, target_patch_prompt, layers, latents, max_length, layers_per_pass, remote, **generate_kwargs
    )
