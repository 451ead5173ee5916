"""The nnrosetta conformance suite: proves a model is served correctly by its adapter."""

from .tiny import build_tiny, build_tokenizer, claimed_tiny_types, save_tiny, tiny_config
from .report import CheckResult, Report, SuiteRun
from .runner import run, run_all_tiny

__all__ = [
    "CheckResult",
    "Report",
    "SuiteRun",
    "build_tiny",
    "build_tokenizer",
    "claimed_tiny_types",
    "run",
    "run_all_tiny",
    "save_tiny",
    "tiny_config",
]
