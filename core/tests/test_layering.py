"""The core stands alone: it never imports the conformance suite.

The suite reaches the ``nnrosetta`` command through the ``nnrosetta.commands`` entry point
(`check`), and the registry reads the names of its checks through ``nnrosetta.check_names``.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "nnrosetta"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_core_module_imports_the_conformance_suite() -> None:
    offenders = sorted(
        str(path.relative_to(CORE))
        for path in CORE.rglob("*.py")
        if any(name.split(".")[0] == "nnrosetta_conformance" for name in _imported_modules(path))
    )
    assert offenders == [], f"core modules importing nnrosetta_conformance: {offenders}"


def test_the_check_command_comes_from_the_suite_through_an_entry_point() -> None:
    from nnrosetta.cli import BUILT_IN, command_modules

    assert "check" not in BUILT_IN
    assert command_modules()["check"] == "nnrosetta_conformance.command"
