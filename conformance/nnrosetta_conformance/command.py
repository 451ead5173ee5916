"""``nnrosetta check``: run the conformance suite on a model, or on a tiny model of every claimed type.

TARGET is a hub id, a local folder, or ``tiny:<model_type>``. A progress display
runs while the checks do; a table follows; ``--json`` and ``--markdown`` write
the machine-readable report and the compatibility matrix from the same run. The
exit status is 1 when a check fails (or a known-broken one passes), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from typing import TYPE_CHECKING

from nnrosetta.errors import NnrosettaError
from nnrosetta.cli import console, writable_file

if TYPE_CHECKING:  # rich is imported when something is printed: `nnrosetta check --help` stays light
    from rich.console import Console

NAME = "check"
HELP = "run the conformance suite on a model (hub id, folder, tiny:<model_type>) or on every tiny model"
STYLES = {"passed": "green", "failed": "bold red", "skipped": "dim", "xfailed": "yellow", "xpassed": "bold magenta"}
FAILED_RUN = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", help="a hub id, a folder written by save_pretrained, or tiny:<model_type>")
    parser.add_argument("--all-tiny", action="store_true", help="check a tiny model of every type installed plugins claim")
    parser.add_argument("--adapter", metavar="NAME", help="force this adapter (with --all-tiny: only its types)")
    parser.add_argument("--checks", metavar="A,B", help="comma-separated check names (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="leave out the costliest checks (write_effect, sublayer_locality, gradients, generation): for very large models",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON, with the versions it ran on")
    parser.add_argument("--markdown", metavar="FILE", help="write the compatibility matrix as markdown")


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .report import SuiteRun, versions
    from .runner import run as run_suite
    from .runner import run_all_tiny, select_checks, tiny_targets

    if bool(args.target) == bool(args.all_tiny):
        raise NnrosettaError(
            "give exactly one of TARGET (a hub id, a folder, or tiny:<model_type>) and --all-tiny; "
            "see `nnrosetta check --help`."
        )
    names = args.checks.split(",") if args.checks is not None else None
    selected = select_checks(names, quick=args.quick)
    writable_file(args.json, "--json")
    writable_file(args.markdown, "--markdown")
    from nnrosetta.registry import default_registry

    registry = default_registry()
    if args.adapter:
        registry.adapter(args.adapter)  # an unknown name fails here, before any model loads
    command = "nnrosetta check " + " ".join(shlex.quote(a) for a in _shown_arguments(args))
    progress_console = console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
        disable=not progress_console.is_terminal,  # a log or a pipe gets the table alone
    )
    labels: list[tuple[object, str]] = []

    def on_model(label: str, total: int) -> None:
        labels.append((progress.add_task(label, total=total), label))

    def on_result(result) -> None:
        task, label = labels[-1]
        progress.update(task, advance=1, description=f"{label}: {result.name}")

    with progress:
        if args.all_tiny:
            if not tiny_targets(registry, args.adapter):
                raise NnrosettaError(f"no installed adapter ships a tiny config. {registry.describe_installed()}")
            outcome = run_all_tiny(
                [c.name for c in selected],
                registry=registry,
                adapter=args.adapter,
                on_model=on_model,
                on_result=on_result,
                command=command,
            )
        else:
            on_model(args.target, len(selected))
            report = run_suite(
                args.target, [c.name for c in selected], adapter=args.adapter, registry=registry, on_result=on_result
            )
            outcome = SuiteRun([report], versions(registry), command, report.seconds)
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps(outcome.to_dict(), indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).expanduser().write_text(outcome.to_markdown())
    _print(console(), outcome, single=not args.all_tiny)
    return 0 if outcome.ok else FAILED_RUN


def _shown_arguments(args: argparse.Namespace) -> list[str]:
    shown = [args.target] if args.target else ["--all-tiny"]
    if getattr(args, "quick", False):
        shown.append("--quick")
    for option in ("adapter", "checks"):
        if getattr(args, option):
            shown += [f"--{option}", getattr(args, option)]
    for option in ("json", "markdown"):
        if getattr(args, option):
            shown += [f"--{option}", getattr(args, option)]
    return shown


def _print(out: "Console", outcome, single: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    if single:
        report = outcome.reports[0]
        table = Table(title=f"nnrosetta check {report.target}: {report.model_type} via adapter {report.adapter} ({report.plugin})")
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("seconds", justify="right", no_wrap=True)
        table.add_column("message", overflow="fold")
        for result in report.results:
            table.add_row(result.name, Text(result.status, style=STYLES.get(result.status, "")), f"{result.seconds:.2f}", result.message)
        out.print(table)
    else:
        table = Table(title="nnrosetta check --all-tiny", caption="xfail: known broken, as the adapter declares")
        # Counts only, so the table fits 80 columns; each failing check is named below it.
        for column in ("model type", "adapter", "pass", "skip", "xfail", "fail", "seconds"):
            table.add_column(column, overflow="fold", justify="left" if column in ("model type", "adapter") else "right")
        for report in outcome.reports:
            count = lambda *statuses: sum(r.status in statuses for r in report.results)  # noqa: E731
            failed = count("failed", "xpassed")
            table.add_row(
                report.model_type,
                report.adapter,
                str(count("passed")),
                str(count("skipped")),
                str(count("xfailed")),
                Text(str(failed), style="bold red" if failed else ""),
                f"{report.seconds:.1f}",
            )
        out.print(table)
        for report in outcome.reports:
            for result in report.failures:
                out.print(Text.assemble((f"{report.model_type} / {result.name}", "bold red"), f" ({result.status}): {result.message}"))
    conforming = sum(report.ok for report in outcome.reports)
    verdict = Text("all conform", style="green") if outcome.ok else Text("failures", style="bold red")
    out.print(Text.assemble(verdict, f": {conforming} of {len(outcome.reports)} model(s) pass every check in {outcome.seconds:.1f} s."))
