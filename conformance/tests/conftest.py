"""Fixtures for the conformance tests: example plugin distributions installed through real metadata.

The example plugins under ``example_plugins/`` are what a third party would publish
(a pyproject with an ``nnrosetta`` entry point, a package, a three-line test file).
`install_distribution` installs one the way pip lays it out: the package folder
and a ``*.dist-info`` with ``METADATA`` and ``entry_points.txt``, so discovery goes
through ``importlib.metadata`` exactly as for an installed plugin.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "example_plugins"

#: The example plugins' own test files are run by test_example_plugins.py, in a subprocess.
collect_ignore = ["example_plugins"]


def install_distribution(source: Path, site: Path) -> str:
    """Install the distribution at ``source`` (a folder with a pyproject.toml) into ``site``."""
    pyproject = tomllib.loads((source / "pyproject.toml").read_text())
    project = pyproject["project"]
    name, version = project["name"], project["version"]
    for package in pyproject["tool"]["setuptools"]["packages"]:
        shutil.copytree(source / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{entry} = {target}" for entry, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return name


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding the installed example plugins (working and broken)."""
    site = tmp_path_factory.mktemp("site")
    for pyproject in sorted(EXAMPLES.glob("*/pyproject.toml")):
        install_distribution(pyproject.parent, site)
    return site


@pytest.fixture
def example_registry(example_site: Path, monkeypatch: pytest.MonkeyPatch):
    """A registry that discovers only the example plugins, importable from the site folder."""
    from nnrosetta.registry import Registry

    monkeypatch.syspath_prepend(str(example_site))
    yield Registry(autoload=True, search_path=[str(example_site)])
    for module in [m for m in sys.modules if m.startswith("nnrosetta_example")]:
        del sys.modules[module]
