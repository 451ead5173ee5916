"""Interpretability methods that run unchanged on every conformant model.

Each works only through the standard interface (``layers_output[i]``,
``project_on_vocab``, ...), validates its input before any forward pass, and
passes ``remote`` to nnsight. `module_access` holds the standard names as
functions (they also read a plain nnsight model laid out like Llama), and
`StandardModules` the same names over a bare HuggingFace model.
"""

from .activation_patching import activation_patching
from .attribution_patching import attribution_patching
from .cache import ActivationCache, run_with_cache
from .hf_modules import StandardModules
from .logit_lens import logit_lens
from .metrics import logit_difference, token_logit
from .object_attention import patch_object_attn_lens
from .patchscope import patchscope_generate, patchscope_generate_ids, patchscope_lens
from .steering import steering_vector
from .target_prompt import TargetPrompt, TargetPromptBatch, it_repeat_prompt, repeat_prompt
from .token_activations import (
    collect_last_token_activations_session,
    collect_token_activations_batched,
    get_token_activations,
)

__all__ = [
    "ActivationCache",
    "StandardModules",
    "TargetPrompt",
    "TargetPromptBatch",
    "activation_patching",
    "attribution_patching",
    "collect_last_token_activations_session",
    "collect_token_activations_batched",
    "get_token_activations",
    "it_repeat_prompt",
    "logit_difference",
    "logit_lens",
    "patch_object_attn_lens",
    "patchscope_generate",
    "patchscope_generate_ids",
    "patchscope_lens",
    "repeat_prompt",
    "run_with_cache",
    "steering_vector",
    "token_logit",
]
