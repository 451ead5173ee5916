"""Throwaway plugin distributions on disk: real ``*.dist-info`` metadata with entry points.

Discovery goes through ``importlib.metadata`` exactly as for an installed plugin,
so these tests exercise the real entry-point path, not imports from the source tree.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

_counter = itertools.count()

ADAPTER_SOURCE = """
from nnrosetta import Adapter, hookimpl

ADAPTER = Adapter(
    name={name!r},
    model_types={model_types!r},
    rename={{"model.layers": "layers", "model.norm": "ln_final", "model.embed_tokens": "embed_tokens"}},
    priority={priority!r},
)

@hookimpl
def register_adapters(register):
    register(ADAPTER)
"""


def unique_module(stem: str) -> str:
    """A module name never imported before in this process (entry points import by name)."""
    return f"{stem}_{next(_counter)}_{id(sys.modules)}"


def make_distribution(
    root: Path, distribution: str, version: str, plugins: dict[str, str], requires: tuple[str, ...] = ()
) -> Path:
    """Write a dist-info for ``distribution`` whose ``nnrosetta`` entry points name ``plugins``' modules.

    ``plugins`` maps entry-point name -> module source; each module gets a fresh name.
    """
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    requirements = "".join(f"Requires-Dist: {line}\n" for line in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n{requirements}")
    lines = ["[nnrosetta]"]
    for entry_name, source in plugins.items():
        module = unique_module(entry_name)
        source = textwrap.dedent(source)
        if "NNROSETTA_CONTRACT" not in source:  # every plugin written for this contract says so
            source = "NNROSETTA_CONTRACT = 2\n" + source
        (root / f"{module}.py").write_text(source)
        lines.append(f"{entry_name} = {module}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root


def adapter_plugin(name: str, model_types: tuple[str, ...], priority: int = 0) -> str:
    return ADAPTER_SOURCE.format(name=name, model_types=model_types, priority=priority)
