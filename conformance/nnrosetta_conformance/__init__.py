"""The nnrosetta conformance suite: proves a model is served correctly by its adapter.

Names are imported on first use, so loading the pytest plugin (which pytest does
in every run where nnrosetta is installed) costs nothing until a suite runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_tiny": "tiny",
    "build_tokenizer": "tiny",
    "claimed_tiny_types": "tiny",
    "save_tiny": "tiny",
    "tiny_config": "tiny",
    "CheckResult": "report",
    "Report": "report",
    "SuiteRun": "report",
    "run": "runner",
    "run_all_tiny": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
