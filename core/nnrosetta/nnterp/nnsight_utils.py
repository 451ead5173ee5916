"""nnterp's ``nnsight_utils``: the standard names as functions, on a plain nnsight model or a StandardizedTransformer.

All of them are nnrosetta's own (`nnrosetta.interventions.module_access` and
`nnrosetta.interventions.token_activations`). A plain nnsight ``LanguageModel``
is read with the Llama layout (``model.model.layers``, ``model.model.norm``,
``model.lm_head``); a `StandardizedTransformer` through its accessors, so every
family works. Token indices (``idx``) count in each prompt's own tokens whatever
side the tokenizer pads on.
"""

from ..interventions.module_access import (
    get_attention,
    get_attention_output,
    get_layer,
    get_layer_input,
    get_layer_output,
    get_layers,
    get_logits,
    get_mlp,
    get_mlp_output,
    get_next_token_probs,
    get_num_layers,
    get_token_embeddings,
    get_unembed,
    get_unembed_norm,
    project_on_vocab,
)
from ..interventions.token_activations import (
    collect_last_token_activations_session,
    collect_token_activations_batched,
    get_token_activations,
)

__all__ = [
    "collect_last_token_activations_session",
    "collect_token_activations_batched",
    "get_attention",
    "get_attention_output",
    "get_layer",
    "get_layer_input",
    "get_layer_output",
    "get_layers",
    "get_logits",
    "get_mlp",
    "get_mlp_output",
    "get_next_token_probs",
    "get_num_layers",
    "get_token_activations",
    "get_token_embeddings",
    "get_unembed",
    "get_unembed_norm",
    "project_on_vocab",
]
