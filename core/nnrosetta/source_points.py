"""Resolve a plugin's points (`nnrosetta.points`) against the live ``.source`` of a forward.

nnsight labels each call and assignment ``<name>_<n>`` in execution order and
keeps, per label, the line it sits on. A point names the operation by meaning; the
label it stands for is found here, once per forward (cached by code object), so a
renumbering between releases costs no edit to any plugin. When a point matches
nothing, the error says which adapter declared it, which nnsight is installed, and
which labels exist.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

import nnsight

from .errors import SourceLabelError
from .points import Argument, Assigned, Called, Inside, Point, describe

if TYPE_CHECKING:
    from nnsight.intervention.envoy import Envoy
    from nnsight.intervention.source import Compiled, SourceEnvoy

    from .adapter import Adapter

_RESOLVED: dict[tuple[Any, Any], str] = {}


@dataclass(frozen=True)
class Reached:
    """An operation a point leads to, and the argument of it when the point is one."""

    operation: "SourceEnvoy"
    argument: Union[int, str, None] = None

    @property
    def value(self) -> Any:
        """The point's value: the operation's output, or the argument the call received."""
        if self.argument is None:
            return self.operation.output
        args, kwargs = self.operation.inputs
        return args[self.argument] if isinstance(self.argument, int) else kwargs[self.argument]

    def write(self, value: Any) -> None:
        """Replace the point's value for the rest of the forward."""
        if self.argument is None:
            self.operation.output = value
            return
        args, kwargs = self.operation.inputs
        if isinstance(self.argument, int):
            self.operation.inputs = ((*args[: self.argument], value, *args[self.argument + 1 :]), kwargs)
        else:
            self.operation.inputs = (args, {**kwargs, self.argument: value})


class _Missing(Exception):
    """A point matched no label; carries what was looked for."""


def _labels_named(compiled: "Compiled", name: str) -> list[str]:
    prefix = name.replace(".", "_")
    found = []
    for label in compiled.names:
        stem, _, number = label.rpartition("_")
        if stem == prefix and number.isdigit():
            found.append(label)
    return found


def _line(compiled: "Compiled", label: str) -> str:
    lines = compiled.source.split("\n")
    number = compiled.lines.get(label, 0)
    return lines[number - 1] if 0 < number <= len(lines) else ""


def _calls(compiled: "Compiled", callee: str) -> list[str]:
    pattern = re.compile(r"(?<![\w.])" + r"\s*\.\s*".join(map(re.escape, callee.split("."))) + r"\s*\(")
    return [label for label in _labels_named(compiled, callee) if pattern.search(_line(compiled, label))]


def _pick(labels: list[str], occurrence: int) -> str:
    try:
        return labels[occurrence]
    except IndexError:
        raise _Missing() from None


@functools.lru_cache(maxsize=256)
def _self_conditions(source: str) -> tuple[tuple[Any, frozenset[int], frozenset[int]], ...]:
    """Each ``if`` whose condition reads only ``self`` and constants: (compiled condition, body lines, else lines).

    Parsed once per forward source, however many points and layers are resolved in it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
        if names != {"self"} or any(isinstance(n, (ast.Call, ast.Lambda, ast.NamedExpr)) for n in ast.walk(node.test)):
            continue
        lines = lambda statements: frozenset(  # noqa: E731
            line for statement in statements
            for line in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
        )
        found.append((compile(ast.Expression(node.test), "<condition>", "eval"), lines(node.body), lines(node.orelse)))
    return tuple(found)


def _skipped_lines(compiled: "Compiled", module: Any) -> frozenset[int]:
    """Lines inside ``if`` blocks that cannot run for this module.

    A condition made only of ``self`` attributes and constants (``if self.qk_layernorm:``)
    is evaluated on the live module; any other condition is taken to run both ways.
    """
    if module is None:
        return frozenset()
    skipped: set[int] = set()
    for condition, body, orelse in _self_conditions(compiled.source):
        try:
            taken = bool(eval(condition, {"__builtins__": {}}, {"self": module}))
        except Exception:  # noqa: BLE001 - an unreadable condition may go either way
            continue
        skipped |= orelse if taken else body
    return frozenset(skipped)


def resolve_label(compiled: "Compiled", point: Union[Called, Assigned, str], module: Any = None) -> str:
    """The label of a first-level point in one instrumented forward (raises `_Missing`).

    With ``module``, operations in branches its attributes rule out are passed over.
    """
    key = (compiled.code, point, id(module))
    if key in _RESOLVED:
        return _RESOLVED[key]
    dead = _skipped_lines(compiled, module)
    live = lambda labels: [label for label in labels if compiled.lines.get(label) not in dead]  # noqa: E731
    if isinstance(point, str):
        if point not in compiled.names:
            raise _Missing()
        label = point
    elif isinstance(point, Called):
        label = _pick(live(_calls(compiled, point.callee)), point.occurrence)
    elif isinstance(point, Assigned):
        calls = set(_calls(compiled, point.name))
        assignments = live([label for label in _labels_named(compiled, point.name) if label not in calls])
        if point.cuts():
            cut = compiled.names.index(_first_resolved(compiled, point.cuts(), module))
            assignments = [label for label in assignments if compiled.names.index(label) < cut]
        label = _pick(assignments, point.occurrence)
    else:
        raise TypeError(f"not a first-level point: {point!r}")
    _RESOLVED[key] = label
    return label


def _first_resolved(compiled: "Compiled", cuts: tuple, module: Any) -> str:
    for cut in cuts:
        try:
            return resolve_label(compiled, cut, module)
        except _Missing:
            continue
    raise _Missing()


def _missing_error(adapter: "Adapter", field: str, point: Point, where: str, compiled: "Compiled") -> SourceLabelError:
    return SourceLabelError(
        f"adapter {adapter.name!r} (plugin {adapter.plugin or '<explicit>'}) declares `{field}` at "
        f"{describe(point)} in {where}, but with nnsight {nnsight.__version__} that forward has no such "
        f"operation. Labels that exist: {', '.join(compiled.names) or '(none)'}. Fix the point in the "
        f"adapter's declaration (print(model.attentions[i].source) shows the forward with its labels)."
    )


def _first_level(
    source: Any, point: Any, adapter: "Adapter", field: str, where: str, full: Point, module: Any = None
) -> "SourceEnvoy":
    try:
        label = resolve_label(source.compiled, point, module)
    except _Missing:
        raise _missing_error(adapter, field, full, where, source.compiled) from None
    return getattr(source, label)


def reach(envoy: "Envoy", point: Point, adapter: "Adapter", field: str) -> Reached:
    """The operation (and argument) ``point`` names inside ``envoy``'s forward.

    A point inside a called function needs the live call, so reach it inside a
    trace, in forward order.
    """
    where = f"the forward of {type(envoy._module).__name__}"
    source, module = envoy.source, envoy._module
    while isinstance(point, Inside):
        operation = _first_level(source, point.outer, adapter, field, where, point, module)
        where = f"the function called at {operation.name!r} ({point.outer.describe()})"
        source, point, module = operation.source, point.inner, None
    if isinstance(point, Argument):
        return Reached(_first_level(source, point.call, adapter, field, where, point, module), point.position)
    return Reached(_first_level(source, point, adapter, field, where, point, module))


def first_level_label(envoy: "Envoy", point: Point) -> Optional[str]:
    """The label a point's first-level part resolves to in ``envoy``'s forward, or None when missing."""
    head = point.outer if isinstance(point, Inside) else point.call if isinstance(point, Argument) else point
    try:
        return resolve_label(envoy.source.compiled, head, envoy._module)
    except _Missing:
        return None


def position(envoy: "Envoy", point: Point) -> int:
    """Where a point's first-level operation runs in ``envoy``'s forward (execution order)."""
    label = first_level_label(envoy, point)
    return envoy.source.compiled.names.index(label) if label is not None else -1


def verify_first_level(envoy: "Envoy", point: Point, adapter: "Adapter", field: str) -> None:
    """Raise `SourceLabelError` now (at load) when a point's first-level part matches nothing."""
    head = point.outer if isinstance(point, Inside) else point.call if isinstance(point, Argument) else point
    compiled = envoy.source.compiled
    try:
        resolve_label(compiled, head, envoy._module)
    except _Missing:
        raise _missing_error(adapter, field, point, f"the forward of {type(envoy._module).__name__}", compiled) from None
