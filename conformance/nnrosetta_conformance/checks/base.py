"""What a conformance check is, and the table every check registers itself in.

A check is one small named function ``fn(model) -> None`` on a loaded
`StandardizedTransformer`: it returns to pass, raises `CheckFailure` with a message
saying what was expected and what was seen, or raises `CheckSkipped`. A check that
names required capabilities is skipped, with the reason, when the adapter does not
claim them; a claimed capability that does not work is a failure, never a skip.
Adding a check is one function plus the `@check(...)` decorator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from nnrosetta.capabilities import Capability

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer

CheckFunction = Callable[["StandardizedTransformer"], None]


class CheckFailure(AssertionError):
    """A check found the interface wrong: the message says expected vs seen."""


class CheckSkipped(Exception):
    """A check does not apply to this model; the message says why."""


@dataclass(frozen=True)
class Check:
    """A registered conformance check."""

    name: str
    function: CheckFunction
    requires: frozenset[Capability]
    doc: str


CHECKS: dict[str, Check] = {}


def check(name: str, requires: Iterable[Capability] = ()) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``fn`` as the conformance check ``name`` needing capabilities ``requires``."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"conformance check {name!r} is registered twice")
        doc = (function.__doc__ or "").strip().splitlines()
        CHECKS[name] = Check(name, function, frozenset(requires), doc[0] if doc else "")
        return function

    return register


def expect(condition: bool, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailure(message)
