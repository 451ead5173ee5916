"""Nothing in the plugin contract goes undocumented: hooks, capability flags, adapter fields, checks."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from nnrosetta import Adapter, hookspecs
from nnrosetta.capabilities import CAPABILITY_DOCS, Capability
from nnrosetta_conformance.checks import CHECKS

README = Path(__file__).resolve().parents[2] / "README.md"


def _hook_specifications() -> list:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [function for _, function in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(function, marker)]


def test_every_hook_specification_says_what_it_takes_and_returns() -> None:
    specifications = _hook_specifications()
    assert [s.__name__ for s in specifications][:1] == ["register_adapters"]
    undocumented = []
    for specification in specifications:
        doc = inspect.getdoc(specification) or ""
        missing = [p for p in inspect.signature(specification).parameters if f"``{p}``" not in doc]
        if len(doc.split()) < 12 or missing:
            undocumented.append(f"{specification.__name__} (parameters not named in its docstring: {missing})")
    assert not undocumented, f"document these hooks in core/nnrosetta/hookspecs.py: {undocumented}"


def test_every_capability_flag_is_documented_with_how_it_is_claimed() -> None:
    undocumented = [c.value for c in Capability if "Claimed when" not in CAPABILITY_DOCS.get(c, "")]
    assert not undocumented, f"add a CAPABILITY_DOCS entry saying what it means and how it is claimed: {undocumented}"
    assert [c.doc for c in Capability] == [CAPABILITY_DOCS[c] for c in Capability]


def test_every_adapter_field_is_in_the_adapter_docstring() -> None:
    doc = Adapter.__doc__ or ""
    assert "Fields:" in doc
    listed = re.findall(r"^        (\w+): ", doc.split("Fields:", 1)[1], flags=re.MULTILINE)
    fields = [field.name for field in dataclasses.fields(Adapter)]
    assert [name for name in fields if name not in listed] == [], "document these fields in Adapter's Fields list"
    assert [name for name in listed if name not in fields] == [], "the Fields list names fields Adapter lacks"


def test_every_check_has_a_docstring_and_is_listed_in_the_conformance_guide() -> None:
    guide = README.read_text().split("## Writing an adapter", 1)[1]
    assert [name for name, c in CHECKS.items() if not c.doc] == []
    assert [name for name in CHECKS if f"`{name}`" not in guide] == [], "list these checks in the README's 'Writing an adapter' section"
