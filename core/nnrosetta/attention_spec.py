"""What a plugin declares so the core can serve attention probabilities and per-head values.

Attention probabilities and per-head queries, keys and values are intermediate
values of the family's attention ``forward``; nnsight reaches them through
``.source``, by the labels it gives each call and assignment. The labels are the
family's knowledge, so the plugin names them here; the core only walks them.
Labels change between nnsight releases, so a missing one is reported with the
labels that do exist (see `source_points`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Union

if TYPE_CHECKING:
    from transformers import PretrainedConfig

#: ``(config) -> reason`` when a loaded model's config takes a path the declaration
#: does not serve (an option that bypasses the hooked code); None when served.
Refusal = Callable[["PretrainedConfig"], Optional[str]]


def _labels_problems(field_name: str, labels: tuple[str, ...]) -> list[str]:
    if not labels or not all(isinstance(label, str) and label for label in labels):
        return [f"`{field_name}` must be a non-empty tuple of `.source` labels, got {labels!r}"]
    return []


@dataclass(frozen=True)
class AttentionSpec:
    """Where the family's attention forward holds its post-softmax probabilities.

    Fields:
        probabilities: the `.source` labels leading to the operation whose output
            is the probabilities the attention actually uses, outermost first. The
            first label is an operation of the attention module's ``forward``; each
            further one is inside the function the previous label calls. E.g.
            ``("attention_interface_1", "nn_functional_dropout_0")``: the call to
            the eager attention function, then its dropout (the identity in eval
            mode) whose output multiplies the values.
        refuse: optional ``(config) -> reason`` for configs that bypass that code.
    """

    probabilities: tuple[str, ...]
    refuse: Optional[Refusal] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", tuple(self.probabilities))

    def problems(self) -> list[str]:
        """What is malformed in this declaration (empty when it is well formed)."""
        found = _labels_problems("probabilities", self.probabilities)
        if self.refuse is not None and not callable(self.refuse):
            found.append("`refuse` must be callable (config) -> reason or None")
        return found


@dataclass(frozen=True)
class CallArgument:
    """A positional argument of a labelled call: the value as that call receives it.

    For a per-head value that the forward assigns too early to be read in the
    standard order (queries, keys, values), e.g. values computed before a q/k norm.
    """

    label: str
    position: int


#: Where one per-head value lives: the output of a labelled operation, or a call's argument.
HeadPoint = Union[str, CallArgument]


@dataclass(frozen=True)
class HeadLabels:
    """Where, in the attention ``forward``, the per-head projections are.

    Each is a `.source` label whose output is the value, or a `CallArgument`. Each
    value must have shape (batch, heads, seq, head_dim) (kv heads for keys and
    values), come before rotary embedding, and be reached in the order queries,
    keys, values, so that user code reads them in one order for every family.
    """

    queries: HeadPoint
    keys: HeadPoint
    values: HeadPoint


@dataclass(frozen=True)
class HeadsSpec:
    """How to reach each head's queries, keys, values and output in the family's attention.

    Declare the per-head projections one of two ways: ``labels`` where the forward
    assigns separate per-head tensors (Llama-style ``q_proj``/``k_proj``/``v_proj``
    with grouped KV heads), or ``fused_projection`` where one child module's output
    concatenates queries, keys and values along the last dimension (GPT-2's
    ``c_attn``); the core splits it into (heads, head_dim) itself.

    Fields:
        output_projection: the attention module's child that maps the concatenated
            head outputs to the hidden size (``"o_proj"``, ``"c_proj"``); its input,
            viewed as (batch, seq, heads, head_dim), is `heads_output`.
        attention_call: the label of the call to the attention function (the
            transformers ``AttentionInterface`` signature: module, query, key,
            value, mask, scaling=..., softcap=...); its query and key are the
            rotated queries and keys, from which `attention_patterns` recomputes
            the probabilities under any attention implementation.
        labels: `HeadLabels`, or ``(config) -> HeadLabels`` where model types (or
            config options) sharing the module tree label their projections differently.
        fused_projection: the attention module's child whose output is
            [queries | keys | values] (num_heads, num_kv_heads, num_kv_heads times head_dim).
        refuse: optional ``(config) -> reason`` for configs that bypass that code.
    """

    output_projection: str
    attention_call: str
    labels: Union[HeadLabels, Callable[["PretrainedConfig"], HeadLabels], None] = None
    fused_projection: Optional[str] = None
    refuse: Optional[Refusal] = None

    def labels_for(self, config: "PretrainedConfig") -> HeadLabels:
        """The labels that apply to a model with this config."""
        return self.labels if isinstance(self.labels, HeadLabels) else self.labels(config)

    def problems(self) -> list[str]:
        """What is malformed in this declaration (empty when it is well formed)."""
        found = []
        if (self.labels is None) == (self.fused_projection is None):
            found.append("declare exactly one of `labels` and `fused_projection`")
        if self.labels is not None and not isinstance(self.labels, HeadLabels) and not callable(self.labels):
            found.append("`labels` must be HeadLabels or a callable (config) -> HeadLabels")
        names = ["output_projection", "attention_call"] + (["fused_projection"] if self.fused_projection is not None else [])
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                found.append(f"`{name}` must be a non-empty string, got {value!r}")
        if self.refuse is not None and not callable(self.refuse):
            found.append("`refuse` must be callable (config) -> reason or None")
        return found
