"""Points inside a forward, named by what they are rather than by nnsight's running numbers.

nnsight labels every call and assignment of an instrumented forward
``<name>_<n>`` with a per-name counter in execution order (``query_states_1``,
``attention_interface_1``). The counter is what moves between nnsight and
transformers releases, so a plugin names a point by meaning instead:

- ``Called("attention_interface")``: a call of that function (dotted as in the code:
  ``Called("nn.functional.dropout")``, ``Called("self.o_proj")``); ``occurrence``
  picks among several calls (0 = first, -1 = last);
- ``Assigned("query_states", before=Called("apply_rotary_pos_emb"))``: an
  assignment to that name, by default the last one before the ``before`` point;
- ``Argument(Called("attention_interface"), 3)``: the value a call receives at a
  position (or keyword);
- ``Inside(Called("attention_interface"), Called("nn.functional.dropout"))``: a
  point inside the function the outer call runs.

The core resolves each against the live ``.source`` of the loaded model
(`nnrosetta.source_points`), once per forward, and names the nnsight version and
the labels that exist when a point is missing. A plain string is taken as a raw
label, for the rare point no meaning can name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class Called:
    """A call of ``callee`` (its dotted path as written in the forward)."""

    callee: str
    occurrence: int = 0

    def describe(self) -> str:
        which = {0: "the first", -1: "the last"}.get(self.occurrence, f"call #{self.occurrence} of the")
        return f"{which} call of `{self.callee}(...)`"


@dataclass(frozen=True)
class Assigned:
    """An assignment to the variable ``name``: the last one before ``before`` (or in the forward).

    ``before`` may be a tuple of points: the first of them that runs in the loaded
    model is the cut (rotary where the layer applies it, else the attention call).
    ``occurrence`` counts among the assignments considered (-1 = the last, 0 = the first).
    """

    name: str
    before: Union["FirstLevelPoint", tuple["FirstLevelPoint", ...], None] = None
    occurrence: int = -1

    def cuts(self) -> tuple["FirstLevelPoint", ...]:
        """The ``before`` points, as a tuple (empty when there is none)."""
        if self.before is None:
            return ()
        return self.before if isinstance(self.before, tuple) else (self.before,)

    def describe(self) -> str:
        which = {0: "the first", -1: "the last"}.get(self.occurrence, f"assignment #{self.occurrence} of the")
        cuts = self.cuts()
        where = f" before {' or else '.join(describe(c) for c in cuts)}" if cuts else ""
        return f"{which} assignment to `{self.name}`{where}"


@dataclass(frozen=True)
class Argument:
    """What ``call`` receives at ``position`` (an int) or as the keyword ``position`` (a str)."""

    call: Called
    position: Union[int, str]

    def describe(self) -> str:
        return f"argument {self.position!r} of {self.call.describe()}"


@dataclass(frozen=True)
class Inside:
    """``inner``, a point of the function that the ``outer`` call runs."""

    outer: Called
    inner: "Point"

    def describe(self) -> str:
        return f"{self.inner.describe()} inside {self.outer.describe()}"


FirstLevelPoint = Union[Called, Assigned, str]
#: Any point a declaration may name.
Point = Union[Called, Assigned, Argument, Inside, str]


def describe(point: Point) -> str:
    """A point in words, for error messages and ``nnrosetta adapters``."""
    return f"the label {point!r}" if isinstance(point, str) else point.describe()


def problems(point: object, field: str) -> list[str]:
    """What is malformed in a point declaration (empty when it is well formed)."""
    if isinstance(point, str):
        return [] if point else [f"`{field}` is an empty label"]
    if isinstance(point, Called):
        return [] if point.callee and isinstance(point.occurrence, int) else [f"`{field}`: {point!r} is malformed"]
    if isinstance(point, Assigned):
        found = [] if point.name and isinstance(point.occurrence, int) else [f"`{field}`: {point!r} is malformed"]
        for cut in point.cuts():
            if not isinstance(cut, (Called, Assigned, str)):
                found.append(f"`{field}`: `before` must be Called, Assigned or label points, got {cut!r}")
        return found
    if isinstance(point, Argument):
        found = problems(point.call, field)
        if not isinstance(point.position, (int, str)) or isinstance(point.position, bool):
            found.append(f"`{field}`: argument position must be an int or keyword name, got {point.position!r}")
        return found
    if isinstance(point, Inside):
        return problems(point.outer, field) + problems(point.inner, field)
    return [
        f"`{field}` must be a point (nnrosetta.Called, Assigned, Argument, Inside, or a label string), "
        f"got {type(point).__name__} {point!r}"
    ]
