"""``nnrosetta adapters``: which plugins are installed, what they claim, what is broken."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ..registry import Registry, default_registry

NAME = "adapters"
HELP = "list installed plugins, their adapters, model types and capabilities, and broken plugins"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of tables")


def describe(registry: Registry) -> dict[str, Any]:
    """Everything `nnrosetta adapters` shows, as plain data."""
    adapters = registry.adapters()
    return {
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in registry.plugins.values()
            if not any(b.name == p.name for b in registry.broken)
        ],
        "adapters": [
            {
                "name": a.name,
                "plugin": a.plugin,
                "model_types": list(a.model_types),
                "model_classes": list(a.model_classes),
                "capabilities": sorted(c.value for c in a.capabilities),
                "known_broken": dict(a.known_broken),
                "priority": a.priority,
                "description": a.description,
            }
            for a in adapters
        ],
        "conflicts": {t: [a.name for a in claim] for t, claim in registry.conflicts().items()},
        "broken": [
            {"name": b.name, "distribution": b.distribution, "version": b.version, "error": b.error}
            for b in registry.broken
        ],
        "autoload": registry.autoload,
    }


def run(args: argparse.Namespace, registry: Registry | None = None) -> int:
    data = describe(registry or default_registry())
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    console = Console()
    table = Table(title="nnrosetta adapters")
    table.add_column("adapter", no_wrap=True)
    table.add_column("plugin", no_wrap=True)
    for column in ("model types", "capabilities", "known broken", "notes"):
        table.add_column(column, overflow="fold")
    for adapter in data["adapters"]:
        table.add_row(
            adapter["name"],
            adapter["plugin"],
            ", ".join(adapter["model_types"]),
            ", ".join(adapter["capabilities"]) or "-",
            "; ".join(f"{k}: {v}" for k, v in adapter["known_broken"].items()) or "-",
            adapter["description"] or "-",
        )
    console.print(table)
    if not data["adapters"]:
        console.print("No adapters installed: pip install a plugin such as nnrosetta-llama.")
    for model_type, names in data["conflicts"].items():
        console.print(f"[yellow]conflict:[/] {model_type} is claimed by {', '.join(names)} with equal priority")
    for broken in data["broken"]:
        console.print(
            f"[red]broken plugin:[/] {broken['name']} ({broken['distribution']} {broken['version']}): {broken['error']}",
            highlight=False,
        )
    if not data["autoload"]:
        console.print("Plugin autoloading is off (NNROSETTA_DISABLE_PLUGIN_AUTOLOAD).")
    return 0
