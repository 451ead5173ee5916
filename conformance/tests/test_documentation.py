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


PLUGIN_FOLDERS = sorted(path.parent for path in (README.parent / "plugins").glob("*/pyproject.toml"))
#: Where hints to users live: the packages' code and the pages (tests may quote old hints to refuse them).
HINT_SOURCES = ("core/nnrosetta", "conformance/nnrosetta_conformance", "plugins", "docs")
UNPUBLISHED_INSTALL = re.compile(r"pip install\s+['\"`]?nnrosetta")


def _project(folder: Path) -> dict:
    import tomllib

    return tomllib.loads((folder / "pyproject.toml").read_text())


def test_every_plugin_pyproject_follows_the_readme_template() -> None:
    from nnrosetta import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    core_range = f"nnrosetta>={major}.{minor},<{major}.{minor + 1}"
    template = README.read_text().split("## Writing a plugin: pyproject.toml", 1)[1]
    assert f'dependencies = ["{core_range}"]' in template, "the README template names another core version"
    departures = []
    for folder in PLUGIN_FOLDERS:
        project = _project(folder)
        meta = project["project"]
        module = f"nnrosetta_{folder.name}"
        expected = {
            "build requires": ["setuptools>=77"],
            "name": f"nnrosetta-{folder.name}",
            "license": "Apache-2.0",
            "dependencies": [core_range],
            "entry points": {folder.name: module},
            "packages": [module],
        }
        seen = {
            "build requires": project["build-system"]["requires"],
            "name": meta["name"],
            "license": meta.get("license"),
            "dependencies": meta.get("dependencies"),
            "entry points": meta.get("entry-points", {}).get("nnrosetta"),
            "packages": project.get("tool", {}).get("setuptools", {}).get("packages"),
        }
        departures += [f"{folder.name}: {key} is {seen[key]!r}, expected {value!r}" for key, value in expected.items() if seen[key] != value]
        if "classifiers" not in meta or any("License ::" in c for c in meta["classifiers"]):
            departures.append(f"{folder.name}: classifiers missing, or a licence classifier next to `license`")
    assert PLUGIN_FOLDERS and not departures, departures


def test_the_readme_plugin_table_lists_every_plugin_folder() -> None:
    table = README.read_text().split("| plugin | distribution | model types |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `plugins/([\w-]+)` \| `([\w-]+)` \|", table, flags=re.MULTILINE)
    on_disk = [(folder.name, _project(folder)["project"]["name"]) for folder in PLUGIN_FOLDERS]
    assert sorted(listed) == sorted(on_disk), "keep the README's plugin table in step with plugins/"


def test_the_licence_is_apache_2_everywhere() -> None:
    licence = (README.parent / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert _project(README.parent)["project"]["license"] == "Apache-2.0"


def test_no_hint_names_a_package_that_is_not_published() -> None:
    """nnrosetta is installed from a clone (`pip install ./plugins/<family>`), not by a package name."""
    root = README.parent
    files = [root / "README.md"] + [p for where in HINT_SOURCES for p in (root / where).rglob("*") if p.suffix in (".py", ".md")]
    offending = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in files
        if "tests" not in path.relative_to(root).parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNPUBLISHED_INSTALL.search(line)
    ]
    assert not offending, "suggest `pip install ./plugins/<family>` (from a clone) instead:\n" + "\n".join(offending)
