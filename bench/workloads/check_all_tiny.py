"""Workload 8: wall time of ``nnrosetta check --all-tiny``, the whole conformance suite.

Run once, as a user runs it (a fresh process, imports included): at several
minutes it is too long to repeat five times within the command's budget. The
``--json`` report gives the models checked and how many passed. ``--quick``
checks only the gpt2 adapter's types.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from ..context import Settings
from ..report import Row, missing

NAME = "8 nnrosetta check --all-tiny"
QUICK_ADAPTER = "gpt2"


def command(report: Path, quick: bool) -> list[str]:
    executable = shutil.which("nnrosetta", path=str(Path(sys.executable).parent)) or "nnrosetta"
    arguments = [executable, "check", "--all-tiny", "--json", str(report)]
    return arguments + (["--adapter", QUICK_ADAPTER] if quick else [])


def run(_models: Optional[object], settings: Settings) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="nnrosetta-bench-") as folder:
        report = Path(folder) / "report.json"
        arguments = command(report, settings.quick)
        started = time.perf_counter()
        done = subprocess.run(arguments, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        label = " ".join(["nnrosetta"] + arguments[1:3] + arguments[5:])
        if not report.exists():
            return [missing(NAME, "tiny (all types)", label, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")]
        outcome = json.loads(report.read_text())
    reports = outcome.get("reports", [])
    passing = sum(all(r["status"] in ("passed", "skipped", "xfailed") for r in rep["results"]) for rep in reports)
    checks = sum(len(rep["results"]) for rep in reports)
    return [
        Row(NAME, "tiny (all types)" if not settings.quick else f"tiny ({QUICK_ADAPTER} types)", label, seconds,
            note=f"1 run (wall, imports included); {len(reports)} models, {checks} checks, "
            f"{passing}/{len(reports)} models pass every check; "
            f"{seconds / max(len(reports), 1):.1f} s per model; exit {done.returncode}"),
    ]
