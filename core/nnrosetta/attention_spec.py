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
class HeadLabels:
    """The `.source` labels, in the attention ``forward``, of the per-head projections.

    Each labelled value must have shape (batch, heads, seq, head_dim) (kv heads for
    keys and values) and come before rotary embedding is applied.
    """

    queries: str
    keys: str
    values: str


@dataclass(frozen=True)
class HeadsSpec:
    """How to reach each head's queries, keys, values and output in the family's attention.

    Fields:
        labels: `HeadLabels`, or ``(config) -> HeadLabels`` where model types (or
            config options) sharing the module tree label their projections
            differently; GPT-2's fused ``c_attn`` is served by naming the values
            its forward splits out.
        output_projection: the attention module's child that maps the concatenated
            head outputs to the hidden size (``"o_proj"``, ``"c_proj"``); its input,
            viewed as (batch, seq, heads, head_dim), is `heads_output`.
        attention_call: the label of the call to the attention function (the
            transformers ``AttentionInterface`` signature: module, query, key,
            value, mask, scaling=..., softcap=...); its query and key are the
            rotated queries and keys, from which `attention_patterns` recomputes
            the probabilities under any attention implementation.
        refuse: optional ``(config) -> reason`` for configs that bypass that code.
    """

    labels: Union[HeadLabels, Callable[["PretrainedConfig"], HeadLabels]]
    output_projection: str
    attention_call: str
    refuse: Optional[Refusal] = None

    def labels_for(self, config: "PretrainedConfig") -> HeadLabels:
        """The labels that apply to a model with this config."""
        return self.labels if isinstance(self.labels, HeadLabels) else self.labels(config)

    def problems(self) -> list[str]:
        """What is malformed in this declaration (empty when it is well formed)."""
        found = []
        if not isinstance(self.labels, HeadLabels) and not callable(self.labels):
            found.append("`labels` must be HeadLabels or a callable (config) -> HeadLabels")
        for name in ("output_projection", "attention_call"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                found.append(f"`{name}` must be a non-empty string, got {value!r}")
        if self.refuse is not None and not callable(self.refuse):
            found.append("`refuse` must be callable (config) -> reason or None")
        return found
