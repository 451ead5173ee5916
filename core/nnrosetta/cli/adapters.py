"""``nnrosetta adapters``: which plugins are installed, what they claim, what is broken."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import console

if TYPE_CHECKING:
    from ..registry import Registry

#: What to run when no plugin is installed (the plugins are not on the package index yet).
INSTALL_HINT = "pip install ./plugins/llama (each folder under plugins/ is one plugin)."

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
                "residual": a.residual.kind,
                "types": [_type_entry(a, t) for t in a.model_types],
            }
            for a in adapters
        ],
        "name_conflicts": {name: list(plugins) for name, plugins in registry.name_conflicts.items()},
        "conflicts": {t: [a.name for a in claim] for t, claim in registry.conflicts().items()},
        "broken": [
            {"name": b.name, "distribution": b.distribution, "version": b.version, "error": b.error}
            for b in registry.broken
        ],
        "autoload": registry.autoload,
    }


def _type_entry(adapter: Any, model_type: str) -> dict[str, Any]:
    """What one claimed model type gets once its variant is merged in."""
    merged = adapter.for_type(model_type)
    return {
        "model_type": model_type,
        "served": merged.unsupported is None,
        "refused": merged.unsupported,
        "capabilities": sorted(c.value for c in merged.capabilities),
        "residual": merged.residual.kind,
        "spans": {name: f"{span.start} ... {span.end}" for name, span in merged.spans.items()},
        "absent": dict(merged.absent),
        "known_broken": dict(merged.known_broken),
        "not_padding_invariant": merged.not_padding_invariant,
        "layer_kinds": _default_layer_kinds(merged, model_type),
        "notes": merged.notes,
    }


def _default_layer_kinds(adapter: Any, model_type: str) -> Any:
    """The layer kinds the adapter reads from the type's default transformers config, or None.

    Only for adapters that declare `LayerKinds` (a type whose layers are all of one kind has
    none); a default config the kinds cannot be read from says why instead.
    """
    if adapter.layer_kinds is None or adapter.unsupported is not None:
        return None
    try:
        from transformers import AutoConfig  # only when some adapter declares layer kinds

        config = AutoConfig.for_model(model_type)
        config = getattr(config, "get_text_config", lambda: config)()
        return list(adapter.layer_kinds.kinds(config))
    except Exception as error:  # noqa: BLE001 - a listing must not fail on one type's default config
        return f"not read from the default config ({type(error).__name__}: {error})"


def _kinds_summary(kinds: Any) -> str:
    """``attention 12, linear_attention 36 of 48 layers: linear_attention x3, attention, ...``"""
    if isinstance(kinds, str):
        return kinds
    counts = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    runs: list[str] = []
    for kind in kinds[:12]:
        if runs and runs[-1].split(" x")[0] == kind:
            head, _, times = runs[-1].partition(" x")
            runs[-1] = f"{head} x{int(times or 1) + 1}"
        else:
            runs.append(kind)
    more = ", ..." if len(kinds) > 12 else ""
    totals = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    return f"{totals} of {len(kinds)} layers (default config): {', '.join(runs)}{more}"


def _variant_lines(adapter: dict[str, Any]) -> dict[str, str]:
    """One line per type that differs from the family: its capabilities, layout, notes, or refusal."""
    lines = {}
    for entry in adapter["types"]:
        if not entry["served"]:
            lines[entry["model_type"]] = f"refused: {entry['refused']}"
            continue
        parts = []
        if entry["capabilities"] != adapter["capabilities"]:
            parts.append("capabilities: " + (", ".join(entry["capabilities"]) or "-"))
        if entry["spans"]:
            parts.append("spans: " + ", ".join(f"{k} = {v}" for k, v in entry["spans"].items()))
        if entry["absent"]:
            parts.append("absent: " + ", ".join(entry["absent"]))
        if entry["residual"] != adapter["residual"]:
            parts.append(f"residual: {entry['residual']}")
        if entry["known_broken"] and entry["known_broken"] != adapter["known_broken"]:
            parts.append("known broken: " + ", ".join(entry["known_broken"]))
        if entry["layer_kinds"]:
            parts.append("layer kinds: " + _kinds_summary(entry["layer_kinds"]))
        if entry["not_padding_invariant"]:
            parts.append(f"not padding-invariant (checked: served logits equal plain HF's): {entry['not_padding_invariant']}")
        if entry["notes"]:
            parts.append(entry["notes"])
        if parts:
            lines[entry["model_type"]] = "; ".join(parts)
    return lines


def run(args: argparse.Namespace, registry: Registry | None = None) -> int:
    from ..registry import default_registry  # loads the plugins: only when the command runs

    data = describe(registry or default_registry())
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = console()
    plugins = len({a["plugin"] for a in data["adapters"]})
    out.print(Text(f"nnrosetta adapters: {len(data['adapters'])} adapter(s) from {plugins} plugin(s)", style="bold"))
    for adapter in data["adapters"]:
        out.print()
        out.print(_adapter_block(adapter))
    if not data["adapters"]:
        out.print(f"No adapters installed. From a clone of nnrosetta: {INSTALL_HINT}")
    for model_type, names in data["conflicts"].items():
        out.print()
        out.print(Text.assemble(("conflict: ", "yellow"), f"{model_type} is claimed by {', '.join(names)} with equal priority"))
    for name, plugins in data["name_conflicts"].items():
        out.print()
        out.print(Text.assemble(("conflict: ", "yellow"), f"adapter name {name} is declared by {' and '.join(plugins)}; neither is served"))
    for broken in data["broken"]:
        out.print()
        # One line per broken plugin (soft-wrapped by the terminal, never split by us).
        line = f"{broken['name']} ({broken['distribution']} {broken['version']}): {' '.join(broken['error'].split())}"
        out.print(Text.assemble(("broken plugin: ", "red"), line), soft_wrap=True)
    if not data["autoload"]:
        out.print()
        out.print("Plugin autoloading is off (NNROSETTA_DISABLE_PLUGIN_AUTOLOAD).")
    return 0


def _adapter_block(adapter: dict[str, Any]) -> Group:
    """One adapter as a heading and labelled lines: wraps at word boundaries at any width."""
    heading = Text.assemble((adapter["name"], "bold cyan"), "  ", adapter["plugin"])
    served = [t["model_type"] for t in adapter["types"] if t["served"]]
    refused = [t["model_type"] for t in adapter["types"] if not t["served"]]
    fields = {
        "model types": ", ".join(served) or "-",
        "capabilities": ", ".join(adapter["capabilities"]) or "-",
    }
    if refused:
        fields["refused types"] = ", ".join(refused)
    if adapter["residual"] != "sequential":
        fields["residual"] = adapter["residual"]
    if adapter["model_classes"]:
        fields["model classes"] = ", ".join(adapter["model_classes"])
    if adapter["known_broken"]:
        fields["known broken"] = "; ".join(f"{k}: {v}" for k, v in adapter["known_broken"].items())
    if adapter["priority"]:
        fields["priority"] = str(adapter["priority"])
    if adapter["description"]:
        fields["notes"] = adapter["description"]
    variants = _variant_lines(adapter)
    parts = [heading, _fields(fields)]
    if variants:
        parts += [Text("  per type (what differs from the family):", style="dim"), _fields(variants)]
    return Group(*parts)


def _fields(fields: dict[str, str]) -> Group:
    """Labelled lines, values wrapped under themselves; one grid per line keeps lines free of padding."""
    label_width = 2 + max(len(label) for label in fields)
    rows = []
    for label, value in fields.items():
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True, width=label_width)
        grid.add_column(overflow="fold")
        grid.add_row(f"  {label}", value)
        rows.append(grid)
    return Group(*rows)
