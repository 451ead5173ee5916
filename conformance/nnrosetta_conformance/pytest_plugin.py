"""pytest plugin (entry point ``pytest11: nnrosetta``): the conformance suite inside any test run.

An adapter author's whole conformance test file::

    from nnrosetta_conformance.pytest_plugin import ConformanceSuite

    class TestMyArchConformance(ConformanceSuite):
        adapters = ("myarch",)        # every model type the adapter ships a tiny config for

Each (model type, check) pair becomes its own test item, named after both, so a
failure names what broke. An unsupported capability is a skip with the reason; a
check the adapter lists in ``known_broken`` is a strict expected failure (xfail,
and an unexpected pass fails). ``pytest --nnrosetta-model TARGET`` runs the suite
on any model (a folder, a hub id, ``tiny:<model_type>``).

Each target is loaded once per suite class and tiny models run on one torch
thread: the whole suite on the 29 types the four plugins in this repository claim
(435 items) takes about 20 s on two shared cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from .report import FAILED, SKIPPED, XFAILED, XPASSED, CheckResult

# The suite (torch, transformers, nnsight) is imported only when a conformance item
# is collected: pytest loads this plugin in every run where nnrosetta is installed.
TINY_PREFIX = "tiny:"

MODEL_SUITE = Path(__file__).with_name("model_suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnrosetta", "nnrosetta conformance suite")
    group.addoption(
        "--nnrosetta-model",
        action="append",
        default=[],
        metavar="TARGET",
        help="run the conformance suite on TARGET (folder, hub id, tiny:<model_type>); repeatable",
    )
    group.addoption("--nnrosetta-adapter", metavar="NAME", help="force this adapter for --nnrosetta-model targets")
    group.addoption("--nnrosetta-checks", metavar="A,B", help="run only these conformance checks")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nnrosetta: a conformance check on one model")
    if config.getoption("nnrosetta_model"):
        # With no paths on the command line the run is the suite on the targets alone.
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = [str(MODEL_SUITE)]
        else:
            config.args.append(str(MODEL_SUITE))


@dataclass(frozen=True)
class ConformanceCase:
    """One check on one target: the parameter of each generated test item."""

    target: str
    adapter: Optional[str]
    check: str

    @property
    def id(self) -> str:
        label = self.target[len(TINY_PREFIX) :] if self.target.startswith(TINY_PREFIX) else self.target
        return f"{label}-{self.check}"


class _Sessions:
    """Keeps the target under test loaded across its items (one at a time, to bound memory)."""

    def __init__(self) -> None:
        self.key: Optional[tuple] = None
        self.session: Any = None
        self.error: Optional[str] = None

    def get(self, case: ConformanceCase) -> Any:
        key = (case.target, case.adapter)
        if key != self.key:
            self.close()
            self.key = key
            try:
                from .runner import SuiteSession

                self.session = SuiteSession(case.target, case.adapter)
            except Exception as error:  # noqa: BLE001 - every item of the target reports it
                self.error = f"could not load {case.target}: {type(error).__name__}: {error}"
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)
        assert self.session is not None
        return self.session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.key, self.session, self.error = None, None, None


@pytest.fixture(scope="class")
def nnrosetta_sessions() -> Any:
    """The loaded target of a ConformanceSuite class; closed when the class is done."""
    sessions = _Sessions()
    yield sessions
    sessions.close()


def report_outcome(case: ConformanceCase, result: CheckResult) -> None:
    """Turn a check's result into the pytest outcome: pass, skip, xfail, or fail with its message."""
    if result.status == SKIPPED:
        pytest.skip(result.message)
    if result.status == XFAILED:
        pytest.xfail(result.message)
    if result.status in (FAILED, XPASSED):
        pytest.fail(f"conformance check {case.check!r} on {case.target} ({result.status}): {result.message}", pytrace=False)


class ConformanceSuite:
    """Subclass as ``Test...`` to run the conformance suite on your adapter's model types.

    Set one of: ``adapters`` (adapter names: each ships tiny configs), ``model_types``
    (run as ``tiny:<type>``), or ``targets`` (folders, hub ids, ``tiny:<type>``).
    ``checks`` limits the checks (default: every registered one).
    """

    adapters: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    checks: Optional[tuple[str, ...]] = None
    #: Hypothesis-drawn tiny configs (sizes, heads, probes) per type of ``adapters``; 0 runs none.
    property_examples: int = 0
    #: Set by the built-in suite: the targets come from --nnrosetta-model.
    from_command_line: bool = False

    def test_conformance(self, nnrosetta_case: ConformanceCase, nnrosetta_sessions: Any) -> None:
        from .checks import CHECKS

        session = nnrosetta_sessions.get(nnrosetta_case)
        report_outcome(nnrosetta_case, session.run(CHECKS[nnrosetta_case.check]))

    def test_conformance_on_drawn_configs(self, nnrosetta_drawn: tuple[str, str]) -> None:
        from .properties import check_drawn_configs

        check_drawn_configs(*nnrosetta_drawn, examples=self.property_examples)


def _cases(suite: type, config: pytest.Config) -> list[ConformanceCase]:
    from nnrosetta.registry import default_registry

    from .runner import ordered_checks, select_checks

    option = config.getoption("nnrosetta_checks")
    names = option.split(",") if option else suite.checks
    checks = [c.name for c in (select_checks(names) if names is not None else ordered_checks())]
    cases: list[ConformanceCase] = []

    def add(target: str, adapter: Optional[str]) -> None:
        cases.extend(ConformanceCase(target, adapter, name) for name in checks)

    if suite.from_command_line:
        for target in config.getoption("nnrosetta_model"):
            add(target, config.getoption("nnrosetta_adapter"))
        return cases
    registry = default_registry()
    for adapter_name in suite.adapters:
        adapter = registry.adapter(adapter_name)
        types = adapter.tiny_types()
        if not types:
            raise pytest.UsageError(
                f"adapter {adapter_name!r} ({adapter.plugin}) ships no tiny configs, so there is no tiny model "
                f"to check; add `tiny_config` to it or list `targets` in {suite.__name__}."
            )
        for model_type in types:
            add(f"{TINY_PREFIX}{model_type}", adapter_name)
    for model_type in suite.model_types:
        add(f"{TINY_PREFIX}{model_type}", None)
    for target in suite.targets:
        add(target, None)
    if not cases:
        raise pytest.UsageError(
            f"{suite.__name__} names nothing to check: set `adapters`, `model_types` or `targets` on it."
        )
    return cases


def _drawn_cases(suite: type) -> list[Any]:
    if not suite.property_examples or suite.from_command_line:
        reason = "set property_examples = N on the suite to run the suite on N hypothesis-drawn configs per type"
        return [pytest.param(None, id="off", marks=pytest.mark.skip(reason=reason))]
    from nnrosetta.registry import default_registry

    registry = default_registry()
    return [
        pytest.param((name, model_type), id=f"{model_type}-drawn")
        for name in suite.adapters
        for model_type in registry.adapter(name).tiny_types()
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "nnrosetta_drawn" in metafunc.fixturenames:
        metafunc.parametrize("nnrosetta_drawn", _drawn_cases(metafunc.cls))
        return
    if "nnrosetta_case" not in metafunc.fixturenames:
        return
    suite = metafunc.cls
    if suite is None or not issubclass(suite, ConformanceSuite):
        raise pytest.UsageError("the nnrosetta_case parameter is only served to ConformanceSuite subclasses")
    cases = _cases(suite, metafunc.config)
    metafunc.parametrize("nnrosetta_case", cases, ids=[case.id for case in cases])


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if "nnrosetta_case" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nnrosetta)
