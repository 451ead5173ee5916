"""Every conformance check, registered in `CHECKS` by importing the modules listed here.

Adding a module of checks is one entry in `CHECK_MODULES`; a listed module that
does not exist yet is passed over, so check modules can land in any order. A
module that exists but fails to import raises: a broken check must never vanish
from the suite silently.
"""

from __future__ import annotations

import importlib
import importlib.util

from .base import (
    BEFORE_SUITE,
    CHECKS,
    PROBE_PROMPTS,
    Check,
    CheckFailure,
    CheckSkipped,
    Probe,
    SuiteContext,
    before_suite,
    check,
    current_probe,
    expect,
    suite_context,
    suite_state,
)

CHECK_MODULES = ("core", "meaning", "attention", "moe", "kinds")


def _import_check_modules() -> tuple[str, ...]:
    loaded = []
    for name in CHECK_MODULES:
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        importlib.import_module(qualified)
        loaded.append(name)
    return tuple(loaded)


LOADED_MODULES = _import_check_modules()


def ordered_checks() -> list[Check]:
    """Registered checks in run order: gates first, then the rest, then the ``last`` ones."""
    checks = list(CHECKS.values())
    return [c for c in checks if c.gate] + [c for c in checks if not c.gate and not c.last] + [
        c for c in checks if c.last and not c.gate
    ]


__all__ = [
    "BEFORE_SUITE",
    "CHECKS",
    "CHECK_MODULES",
    "LOADED_MODULES",
    "PROBE_PROMPTS",
    "Check",
    "CheckFailure",
    "CheckSkipped",
    "Probe",
    "SuiteContext",
    "before_suite",
    "check",
    "current_probe",
    "expect",
    "ordered_checks",
    "suite_context",
    "suite_state",
]
