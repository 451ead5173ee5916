"""The one benchmark command: ``python bench/run.py`` (``make bench``).

Measures nnrosetta against plain HuggingFace and raw nnsight, side by side in
one run, prints one table with the ratios and whether each target is met, and
writes it to ``bench/results.md`` with the machine, versions and date.
``--quick`` runs every workload on the tiny conformance models (about a minute)
and writes nothing unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from bench.context import Models, Settings  # noqa: E402
from bench.report import Row, environment, missing, print_table, write_markdown  # noqa: E402
from bench.shapes import SHAPES  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_OUTPUT = ROOT / "bench" / "results.md"

#: workload number -> the module under bench.workloads that measures it
WORKLOADS: dict[int, str] = {
    1: "forward",
    2: "forward",
    3: "forward",
    4: "logit_lens",
    5: "patching",
    6: "attribution",
    7: "loading",
    8: "check_all_tiny",
    9: "memory",
    10: "real_model",
}
#: How to read the table; written under it in results.md.
NOTES = (
    "Times are medians of the timed runs (at least 5, and 9 for the comparisons with a target, "
    "after the warm-up runs); each workload's variants run "
    "interleaved (A, B, C, B, C, A, ...), and a ratio is the median over rounds of the two variants' "
    "times in the same round, so load from other processes hits both sides of a pair alike.",
    "Models are random-weight models built from configs with a fixed seed (no hub); each variant "
    "runs on its own copy of the same weights, since nnsight wraps modules in place. Every variant's "
    "result is checked against its floor (the notes give the largest difference).",
    "Peak memory (workload 9) is measured in a child process per shape, with malloc returning freed "
    "tensors to the system: the peak RSS (CUDA: allocated) above what was resident before the call.",
    "Workload 8 runs once (it takes minutes); it includes process start-up and imports.",
    "Workload 10 is the real SmolLM2-135M-Instruct (30 layers), from nnrosetta's cached conversion: its "
    "`nnrosetta check` rows run once each (a fresh process, imports and load included) and are divided "
    "by the 30 s target; its IOI sweep runs 3 rounds (the naive floor takes tens of seconds a round).",
)
#: modules that run once per command rather than once per model shape
ONCE = {"check_all_tiny", "real_model"}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models only: a ~1 minute smoke run")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--shape", default=None, choices=sorted(SHAPES),
                        help="model shapes: small (GPT-2-small sized, default), large (for a GPU), tiny")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (at least 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per variant first")
    parser.add_argument("--only", default="",
                        help="comma-separated workload numbers, e.g. 1,2,3,7 (their rows replace theirs in "
                             "the results file; the other rows are kept)")
    parser.add_argument("--parts", default="",
                        help="comma-separated parts of workload 10: import, load, sweep, lens, check (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(ROOT)}; "
                             "none with --quick)")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5 (medians of fewer runs are too noisy), got {args.repeats}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but torch sees no CUDA device on this machine")
    if args.shape is None:
        args.shape = "tiny" if args.quick else ("large" if args.device.startswith("cuda") else "small")
    if args.output is None and not args.quick:
        args.output = DEFAULT_OUTPUT
    return args


def selected(only: str) -> list[int]:
    if not only:
        return sorted(WORKLOADS)
    numbers = sorted({int(part) for part in only.split(",") if part.strip()})
    unknown = [n for n in numbers if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload number(s) {unknown}; choose from {sorted(WORKLOADS)}")
    return numbers


def settings_for(args: argparse.Namespace) -> Settings:
    parts = tuple(part.strip() for part in args.parts.split(",") if part.strip())
    return Settings(args.device, DTYPES[args.dtype], args.repeats, args.warmup,
                    sweep_shape=SHAPES[args.shape][0].name, quick=args.quick, parts=parts)


def workload_runner(module_name: str) -> Callable:
    module = __import__(f"bench.workloads.{module_name}", fromlist=["run"])
    return module.run


def _timed(label: str, console: Console, function: Callable[[], list[Row]]) -> list[Row]:
    """Run one workload; a crash becomes a NOT MEASURED row, so one failure costs one row, not the run."""
    started = time.perf_counter()
    console.print(f"[dim]{label} ...[/]", end=" ")
    try:
        rows = function()
    except Exception as error:  # noqa: BLE001 - reported in the table, with the traceback above it
        console.print_exception(max_frames=4)
        rows = [missing(label, "", "the whole workload", f"{type(error).__name__}: {error}")]
    console.print(f"[dim]{time.perf_counter() - started:.1f} s[/]")
    return rows


def run_all(args: argparse.Namespace, console: Console) -> list[Row]:
    """Every selected workload, shape by shape (one shape's models in memory at a time)."""
    settings = settings_for(args)
    modules = list(dict.fromkeys(WORKLOADS[n] for n in selected(args.only)))
    rows: list[Row] = []
    for shape in SHAPES[args.shape]:
        models = Models(shape, settings)
        for module in (m for m in modules if m not in ONCE):
            rows += _timed(f"{shape.name}: {module}", console, lambda: workload_runner(module)(models, settings))
        models.release()
    for module in (m for m in modules if m in ONCE):
        rows += _timed(module, console, lambda: workload_runner(module)(None, settings))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    console = Console() if sys.stdout.isatty() else Console(width=170)
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    rows = run_all(args, console)
    elapsed = time.perf_counter() - started
    info = environment(args.device, args.dtype, torch.get_num_threads())
    info["load average (1, 5, 15 min)"] = (
        f"{load_at_start} at start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end"
    )
    info["wall time"] = f"{elapsed:.0f} s"
    title = f"nnrosetta overheads ({args.shape} shapes, {args.device}/{args.dtype}, median of {args.repeats} runs)"
    print_table(rows, title, console)
    if args.output:
        command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_markdown(args.output, rows, info, command.strip(), NOTES, merge=bool(args.only or args.parts))
        console.print(f"written to {args.output}")
    console.print(f"wall time {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
