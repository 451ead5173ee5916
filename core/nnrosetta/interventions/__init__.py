"""Interpretability methods that run unchanged on every conformant model.

Each works only through the standard interface (``layers_output[i]``,
``project_on_vocab``, ...), validates its input before any forward pass, and
passes ``remote`` to nnsight.
"""

from .activation_patching import activation_patching
from .attribution_patching import attribution_patching
from .cache import ActivationCache, run_with_cache
from .logit_lens import logit_lens
from .metrics import logit_difference, token_logit
from .patchscope import patchscope_generate, patchscope_lens
from .steering import steering_vector
from .target_prompt import TargetPrompt, TargetPromptBatch, repeat_prompt

__all__ = [
    "ActivationCache",
    "TargetPrompt",
    "TargetPromptBatch",
    "activation_patching",
    "attribution_patching",
    "logit_difference",
    "logit_lens",
    "patchscope_generate",
    "patchscope_lens",
    "repeat_prompt",
    "run_with_cache",
    "steering_vector",
    "token_logit",
]
