"""Encoder-style causal LMs whose layers cannot carry the standard names, and why.

Each is claimed only to be refused at load with the reason, and listed with it by
``nnrosetta adapters``: serving one under the standard names would give names a
meaning they do not have there.
"""

from __future__ import annotations

from nnrosetta import Variant

XLM = (
    "XLMWithLMHeadModel keeps each layer's parts in four parallel ModuleLists "
    "(transformer.attentions, layer_norm1, ffns, layer_norm2) with no module per layer, so "
    "layers[i], layers_input[i] and layers_output[i] have no module to stand for"
)
XLNET = (
    "XLNet runs its layers on (seq, batch, hidden) tensors, attends bidirectionally unless a perm_mask "
    "is passed (attn_type='bi' by default), and projects attention back with bare parameters inside "
    "rel_attn.post_attention, which also adds the residual and normalises: no module or span outputs "
    "what attention adds to the residual stream, and layer values would not be (batch, seq, hidden)"
)
REFORMER = (
    "Reformer's reversible layers carry two residual streams (each ReformerLayer maps the pair "
    "(attn_output, hidden_states) to a new pair, Y1 = X1 + attn(X2), Y2 = X2 + ffn(Y1), concatenated to "
    "2 * hidden_size before the head) inside a custom autograd function: there is no single "
    "(batch, seq, hidden) residual stream for layers_output[i] to be"
)
CPMANT = (
    "CPM-Ant prepends config.prompt_length prompt tokens inside its forward, so every layer carries "
    "prompt_length + seq positions (not the input's seq), and it derives left padding from the count of "
    "non-zero token ids instead of the attention_mask (its attention_mask argument is a dummy): layer "
    "values would not line up with the input tokens"
)

#: model type -> the refusing variant.
REFUSED = {
    "xlm": Variant(unsupported=XLM),
    "xlnet": Variant(unsupported=XLNET),
    "reformer": Variant(unsupported=REFORMER),
    "cpmant": Variant(unsupported=CPMANT),
}
