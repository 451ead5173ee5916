"""The parts of a `MoESpec` that say, as data, how a family routes and how one expert computes.

Both exist so the conformance suite can recompute a family's routing choice and one
expert's output from the declaration alone, never from the family's forward or its
private methods: a wrong declaration then fails the suite instead of agreeing with
itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from . import points
from .points import Point

if TYPE_CHECKING:
    from transformers import PretrainedConfig

#: Functions a router applies to its logits before choosing experts.
ROUTING_SCORES = ("softmax", "sigmoid", "logits")

#: How a group's score is made from its experts' scores (group-limited routing).
GROUP_SCORES = {
    "top2_sum": "sum of the group's two best expert scores (DeepSeek V3, GLM-4.5 MoE)",
    "max": "the group's best expert score (DeepSeek V2 group_limited_greedy)",
}

GroupKeys = Union[tuple[str, str], Callable[["PretrainedConfig"], Optional[tuple[int, int]]], None]


@dataclass(frozen=True)
class Routing:
    """How the router chooses each token's experts from its logits.

    Fields:
        scores: ``"softmax"``, ``"sigmoid"`` or ``"logits"`` (the logits as they are):
            what the choice ranks. Softmax-then-top-k and top-k-then-softmax rank the
            same experts; only the weights differ, and those are checked for their sum.
        score_bias: path from the ``mlp`` module to a per-expert bias added to the
            scores for the choice only (DeepSeek V3's ``gate.e_score_correction_bias``),
            or None.
        groups: group-limited routing: config keys ``(n_group, topk_group)``, or a
            function ``(config) -> (n_group, topk_group) | None``; experts are split into
            n_group equal groups and only the topk_group best groups may be chosen.
        group_score: how a group is ranked, a key of `GROUP_SCORES`.
    """

    scores: str = "softmax"
    score_bias: Optional[str] = None
    groups: GroupKeys = None
    group_score: str = "top2_sum"

    def problems(self) -> list[str]:
        found = []
        if self.scores not in ROUTING_SCORES:
            found.append(f"routing scores must be one of {ROUTING_SCORES}, got {self.scores!r}")
        if self.group_score not in GROUP_SCORES:
            found.append(f"routing group_score must be one of {tuple(GROUP_SCORES)}, got {self.group_score!r}")
        if self.groups is not None and not callable(self.groups) and not (
            isinstance(self.groups, tuple) and len(self.groups) == 2 and all(isinstance(k, str) for k in self.groups)
        ):
            found.append(f"routing groups must be two config keys or (config) -> (n_group, topk_group), got {self.groups!r}")
        return found

    def group_sizes(self, config: Any) -> Optional[tuple[int, int]]:
        """``(n_group, topk_group)`` for this config, or None when routing is not group-limited."""
        if self.groups is None:
            return None
        if callable(self.groups):
            return self.groups(config)
        values = tuple(getattr(config, key, None) for key in self.groups)
        if any(v is None for v in values):
            return None
        return int(values[0]), int(values[1])


#: What a `TopKInRouter` write replaces: the chosen experts, or their weights.
TOP_K_PARTS = ("indices", "weights")


@dataclass(frozen=True)
class TopKInRouter:
    """A top-k the router chooses inside its forward and does not return as chosen.

    Some routers hand the experts something other than the top-k they chose: a
    sort-grouped dispatch layout built from it (token order, group sizes), or a choice
    rewritten before it is returned (a skip expert handed on as expert 0 with weight
    0). The choice is then read at points of the router's forward
    (`nnrosetta.points`), where it is whole, and written where the router's later code
    reads it. Every point is read or written in the order the forward runs them, so
    all ``written`` points run no earlier than both read points.

    Fields:
        indices, weights: points of the router's forward whose values are the chosen
            experts and their weights: tokens * k values in token-major order, of any
            shape ((tokens, k), or (batch, seq, k)).
        written: where a new top-k goes: ``("indices" | "weights", point)`` pairs, each
            point's value replaced by the new indices or weights reshaped to its shape.
            Name every point the router's later code reads the choice from (one
            variable read by two later statements may need two). Empty: the new top-k
            is written at the router's output, in the `MoESpec.router_returns` form,
            which must then hold indices and weights.
    """

    indices: Point
    weights: Point
    written: tuple[tuple[str, Point], ...] = ()

    def problems(self) -> list[str]:
        found = points.problems(self.indices, "top_k_in_router.indices")
        found += points.problems(self.weights, "top_k_in_router.weights")
        if not isinstance(self.written, tuple):
            return found + [f"top_k_in_router.written must be a tuple of (part, point) pairs, got {self.written!r}"]
        for entry in self.written:
            if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] in TOP_K_PARTS):
                found.append(f"top_k_in_router.written holds {entry!r}; each entry is (one of {TOP_K_PARTS}, point)")
                continue
            found += points.problems(entry[1], f"top_k_in_router.written[{entry[0]!r}]")
        parts = {entry[0] for entry in self.written if isinstance(entry, tuple) and entry}
        if self.written and parts != set(TOP_K_PARTS):
            found.append(f"top_k_in_router.written names {sorted(parts)}; a write point list names both indices and weights")
        return found


@dataclass(frozen=True)
class ExpertByHand:
    """How routed expert e computes from its stacked parameters, as data.

    Parameter names are attribute paths from the experts module (dotted for a child,
    ``"mlp.w1"``; ``"input_linear.weight"`` where `MoESpec.experts` is the block itself), each stacked over experts
    (the first axis is the expert), or flat with experts laid end to end when
    ``flat_rows`` names the config key of each expert's rows (DBRX's ``w1`` of shape
    (experts * ffn, hidden), ``flat_rows="ffn_config.ffn_hidden_size"``).

    Fields:
        gate_up: one parameter holding gate and up projections (``gate_up_proj``), or None.
        gate, up: separate gate and up parameters, when not fused; ``gate=None`` with
            ``gate_up=None`` is an ungated expert: down(act(up(x))).
        down: the down projection.
        transposed: weights are stored (in, out) and applied as ``x @ W``; else (out, in)
            and applied as ``x @ W.T``. ``down_transposed`` overrides it for ``down`` alone.
        interleaved: gate and up alternate along the fused axis (gpt-oss) instead of
            being its two halves.
        up_first: the fused axis holds up before gate.
        bias_suffix: name suffix of per-expert biases (``"_bias"``), or None.
        activation: attribute of the experts module holding the activation, or a
            function ``(experts_module, gate, up) -> hidden`` for a family's own GLU.
        flat_rows: config key of the rows per expert when parameters are (experts * rows,
            cols) rather than (experts, rows, cols); None for stacked parameters.
    """

    gate_up: Optional[str] = "gate_up_proj"
    gate: Optional[str] = None
    up: Optional[str] = None
    down: str = "down_proj"
    transposed: bool = False
    down_transposed: Optional[bool] = None
    interleaved: bool = False
    up_first: bool = False
    bias_suffix: Optional[str] = None
    activation: Union[str, Callable[..., Any]] = "act_fn"
    flat_rows: Optional[str] = None

    def problems(self) -> list[str]:
        found = []
        if self.gate_up is not None and (self.gate is not None or self.up is not None):
            found.append("expert_by_hand names gate_up and also gate/up; declare one layout")
        if self.gate_up is None and self.up is None:
            found.append("expert_by_hand needs gate_up, or up (with gate for a gated expert)")
        if not isinstance(self.down, str) or not self.down:
            found.append(f"expert_by_hand down must name a parameter, got {self.down!r}")
        if not isinstance(self.activation, str) and not callable(self.activation):
            found.append(f"expert_by_hand activation must be an attribute name or a function, got {self.activation!r}")
        return found
