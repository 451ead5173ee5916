"""What a conformance check is, and the table every check registers itself in.

A check is one small named function ``fn(model) -> None`` on a loaded
`StandardizedTransformer`: it returns to pass, raises `CheckFailure` with a message
saying what was expected and what was seen, or raises `CheckSkipped`. A check that
names required capabilities is skipped, with the reason, when the adapter does not
claim them; a claimed capability that does not work is a failure, never a skip.
Adding a check is one function plus the `@check(...)` decorator.

Checks feed the model the suite's `Probe` (`current_probe(model)`): one left-padded
token batch per run, so every check sees the same inputs and a property-based run
can draw them. Work that must happen before any check runs (recording the weights
that `state_restored` compares against) registers with `@before_suite` and keeps
what it records in `suite_state()`.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence

import torch

from nnrosetta.capabilities import Capability

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer

CheckFunction = Callable[["StandardizedTransformer"], None]

#: Prompts of different lengths, so the default probe batch is left-padded.
PROBE_PROMPTS = (
    "The capital of France is",
    "The cat sat on the mat and the dog slept by the",
    "Hi",
)


class CheckFailure(AssertionError):
    """A check found the interface wrong: the message says expected vs seen."""


class CheckSkipped(Exception):
    """A check does not apply to this model; the message says why."""


@dataclass(frozen=True)
class Check:
    """A registered conformance check.

    ``gate``: the check runs first and, when it fails, the others are not run
    (they could only fail in confusing ways). ``last``: it runs after every other.
    """

    name: str
    function: CheckFunction
    requires: frozenset[Capability]
    doc: str
    gate: bool = False
    last: bool = False


CHECKS: dict[str, Check] = {}

#: Functions ``fn(model)`` run once before the checks of a suite run.
BEFORE_SUITE: list[CheckFunction] = []


def check(
    name: str,
    requires: Iterable[Capability] = (),
    *,
    gate: bool = False,
    last: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``fn`` as the conformance check ``name`` needing capabilities ``requires``."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"conformance check {name!r} is registered twice")
        doc = (function.__doc__ or "").strip().splitlines()
        CHECKS[name] = Check(name, function, frozenset(requires), doc[0] if doc else "", gate, last)
        return function

    return register


def before_suite(function: CheckFunction) -> CheckFunction:
    """Run ``fn(model)`` once before a suite's checks (to record a baseline, say)."""
    BEFORE_SUITE.append(function)
    return function


def model_device(model: "StandardizedTransformer") -> torch.device:
    """The device of the model's first parameter: where probes are sent."""
    return next(model._module.parameters()).device


def where_differs(seen: torch.Tensor, expected: torch.Tensor) -> str:
    """Where two tensors differ most, as 'max |Δ| = x at index (...)', for failure messages."""
    difference = (seen.detach().float() - expected.detach().float()).abs()
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    return f"max |Δ| = {float(difference.max()):.3g} at index {index}"


def expect(condition: bool, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailure(message)


@dataclass(frozen=True)
class Probe:
    """The token batch checks feed the model: rows left-padded to one length.

    ``attention_mask`` is 1 on real tokens, 0 on the left padding.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], pad_token_id: int) -> "Probe":
        """Left-pad token-id rows (each non-empty) into one batch."""
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            if len(row):
                ids[index, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
                mask[index, width - len(row) :] = 1
        return cls(ids, mask)

    @classmethod
    def from_prompts(cls, tokenizer: Any, prompts: Sequence[str] = PROBE_PROMPTS) -> "Probe":
        """Tokenize ``prompts`` one by one and left-pad them (whatever the tokenizer's side)."""
        rows = [tokenizer(prompt)["input_ids"] for prompt in prompts]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls.from_rows(rows, pad if pad is not None else 0)

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def sequence_length(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def position_ids(self) -> torch.Tensor:
        """Positions counted from each row's first real token (what nnsight passes)."""
        return (self.attention_mask.cumsum(-1) - 1).clamp(min=0)

    def inputs(self, device: Any = None) -> dict[str, torch.Tensor]:
        """The batch as model keyword inputs, for ``model.trace(probe.inputs())``."""
        return {"input_ids": self.input_ids.to(device), "attention_mask": self.attention_mask.to(device)}

    def row(self, index: int) -> torch.Tensor:
        """Row ``index`` alone, padding removed, as a (1, length) batch."""
        return self.input_ids[index][self.attention_mask[index].bool()].unsqueeze(0)


@dataclass
class SuiteContext:
    """What one suite run shares between its checks: the probe and recorded state."""

    probe: Optional[Probe] = None
    state: dict[str, Any] = field(default_factory=dict)


_CONTEXT: contextvars.ContextVar[Optional[SuiteContext]] = contextvars.ContextVar("nnrosetta_suite", default=None)


@contextlib.contextmanager
def suite_context(context: SuiteContext) -> Iterator[SuiteContext]:
    """Make ``context`` the one `current_probe` and `suite_state` see while checks run."""
    token = _CONTEXT.set(context)
    try:
        yield context
    finally:
        _CONTEXT.reset(token)


def current_probe(model: "StandardizedTransformer") -> Probe:
    """The running suite's probe, or the default prompts tokenized by the model's tokenizer."""
    context = _CONTEXT.get()
    if context is not None and context.probe is not None:
        return context.probe
    probe = Probe.from_prompts(model.tokenizer)
    if context is not None:
        context.probe = probe
    return probe


def suite_state() -> dict[str, Any]:
    """A dict shared by the checks of the running suite (empty outside a suite)."""
    context = _CONTEXT.get()
    return context.state if context is not None else {}
