"""The results table: rows built by the workloads, printed with rich, written as markdown."""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

import torch
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Row:
    """One measurement: a workload variant's value, and its ratio to a reference if any.

    ``target`` is the largest ratio allowed; ``met`` is None where there is no target.
    ``value`` is None when the variant could not run; ``note`` then says why.
    """

    workload: str
    model: str
    variant: str
    value: Optional[float]
    unit: str = "s"
    reference: str = ""
    ratio: Optional[float] = None
    target: Optional[float] = None
    note: str = ""

    @property
    def met(self) -> Optional[bool]:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target


def missing(workload: str, model: str, variant: str, why: str) -> Row:
    """A row for a variant that could not run, saying why (never a made-up figure)."""
    return Row(workload, model, variant, None, note=f"NOT MEASURED: {why}")


def _value(row: Row) -> str:
    if row.value is None:
        return "—"
    if row.unit == "s":
        return f"{row.value * 1000:.1f} ms" if row.value < 1 else f"{row.value:.3f} s"
    if row.unit == "MiB":
        return f"{row.value:.1f} MiB"
    return f"{row.value:g} {row.unit}"


def _ratio(row: Row) -> str:
    return "" if row.ratio is None else f"{row.ratio:.3f}× {row.reference}"


def _target(row: Row) -> str:
    if row.target is None:
        return ""
    verdict = "met" if row.met else "MISSED"
    return f"≤ {row.target:g}× {verdict}"


HEADERS = ("workload", "model", "variant", "median", "ratio", "target", "note")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.workload, row.model, row.variant, _value(row), _ratio(row), _target(row), row.note)


def print_table(rows: Iterable[Row], title: str, console: Optional[Console] = None) -> None:
    table = Table(title=title, show_lines=False)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    previous = None
    for row in rows:
        if previous is not None and row.workload != previous:
            table.add_section()
        style = "red" if row.met is False or row.value is None else None
        table.add_row(*_cells(row), style=style)
        previous = row.workload
    (console or Console()).print(table)


def markdown_table(rows: Iterable[Row]) -> str:
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(escape(cell) for cell in _cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str, dtype: str, threads: int) -> dict[str, str]:
    """Machine, versions and date, so a results file says what produced it."""
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}"
    if device.startswith("cuda") and torch.cuda.is_available():
        machine = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.node()}: {machine}, {_cpu_count()} CPU cores, torch threads {threads}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "device / dtype": f"{device} / {dtype}",
        "versions": ", ".join(
            f"{name} {_version(name)}" for name in ("nnrosetta", "torch", "transformers", "nnsight")
        ),
    }


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def write_markdown(
    path: Path,
    rows: list[Row],
    info: dict[str, str],
    command: str,
    notes: Iterable[str],
    merge: bool = False,
) -> None:
    """Write ``bench/results.md``: what ran, on what, the table, and the notes.

    ``merge`` (a run of some workloads only): the rows of the workloads this run
    measured replace theirs in the existing file, in place; the other rows are kept
    and said to be from the earlier run, with its command, date and load average.
    """
    table = markdown_table(rows)
    earlier = _earlier_run(path) if merge and path.exists() else None
    if earlier is not None:
        kept_lines, earlier_info = earlier
        table = _merged_table(kept_lines, table.splitlines(), {row.workload for row in rows})
        info = {**info, "rows of other workloads": earlier_info}
    body = ["# nnrosetta benchmark results", "", f"Produced by `{command}`.", ""]
    body += [f"- **{key}**: {value}" for key, value in info.items()]
    body += ["", table, ""]
    notes = list(notes)
    if notes:
        body += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    path.write_text("\n".join(body))


def _earlier_run(path: Path) -> Optional[tuple[list[str], str]]:
    """The table lines of an existing results file and a line saying which run made them."""
    lines = path.read_text().splitlines()
    table = [line for line in lines if line.startswith("| ")]
    if len(table) < 2:
        return None
    fields = {}
    for line in lines:
        if line.startswith("Produced by "):
            fields["command"] = line.removeprefix("Produced by ").rstrip(".")
        elif line.startswith("- **") and "**: " in line:
            key, _, value = line[4:].partition("**: ")
            fields[key] = value
    earlier = fields.get("rows of other workloads")
    if earlier:  # already a merge: its kept rows carry their own origin
        return table, earlier
    return table, (f"from {fields.get('command', 'an earlier run')} on {fields.get('date', '?')}, "
                   f"load average {fields.get('load average (1, 5, 15 min)', '?')}")


def _merged_table(earlier: list[str], fresh: list[str], workloads: set[str]) -> str:
    """The earlier table with the rows of ``workloads`` replaced by ``fresh``'s, where they stood."""
    header, rows = fresh[:2], fresh[2:]
    merged, placed = list(header), False
    for line in earlier[1:]:
        if line.startswith("|---"):
            continue
        workload = line[2:].split(" | ", 1)[0].replace("\\|", "|")
        if workload in workloads:
            if not placed:
                merged += rows
                placed = True
            continue
        merged.append(line)
    if not placed:
        merged += rows
    return "\n".join(merged)
