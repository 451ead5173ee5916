"""Workload 9: peak memory of workloads 1-3 and of ``run_with_cache`` of every layer.

Measured in a child process per shape (``python -m bench.workloads.memory``),
started with ``MALLOC_MMAP_THRESHOLD_`` fixed so that freed tensors go back to
the system: each variant runs once to warm up, then once measured. The figure is
the peak above what was resident just before the call (RSS on CPU, torch's
allocated peak on CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from ..context import Models, Settings
from ..memory import peak_bytes
from ..prompts import prompts
from ..report import Row, missing
from ..shapes import SHAPES, token_batch
from .forward import nnrosetta_all_layers, plain_forward, raw_nnsight_all_layers

NAME = "9 peak memory above resident"
ROOT = Path(__file__).resolve().parents[2]
#: allocations of 128 KiB and more are mmap'ed and returned to the system when freed
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
MIB = 2**20


def measure(shape_name: str, settings: Settings) -> dict[str, float]:
    """Peak MiB of each variant (None where it could not run), in this process."""
    shape = next(s for shapes in SHAPES.values() for s in shapes if s.name == shape_name)
    models = Models(shape, settings)
    input_ids = token_batch(shape, settings.batch, settings.seq, settings.device)
    texts = prompts(settings.batch, settings.seq, seed=1)
    variants = {
        "hf": lambda: plain_forward(models, input_ids),
        "raw": lambda: raw_nnsight_all_layers(models, input_ids),
        "ours": lambda: nnrosetta_all_layers(models, input_ids),
    }
    try:
        from nnrosetta.interventions import run_with_cache

        variants["cache"] = lambda: run_with_cache(models.nnrosetta, texts)
    except ImportError:
        pass
    results: dict[str, float] = {}
    for name, function in variants.items():
        function()
        peak = peak_bytes(function, settings.device)
        results[name] = None if peak is None else peak / MIB
    if "cache" in variants:
        results["cache_nbytes"] = variants["cache"]().nbytes / MIB
    return results


def run(models: Models, settings: Settings) -> list[Row]:
    """Start the child process for this shape and turn its figures into rows."""
    name = models.shape.name
    command = [sys.executable, "-m", "bench.workloads.memory", "--shape", name,
               "--settings", json.dumps({**asdict(settings), "dtype": str(settings.dtype).removeprefix("torch.")})]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **MALLOC_ENV}, capture_output=True, text=True)
    if done.returncode != 0:
        return [missing(NAME, name, "memory probe", f"child process failed: {done.stderr.strip()[-300:]}")]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    unit = "MiB"
    what = "CUDA allocated" if settings.device.startswith("cuda") else "RSS"
    rows = [Row(NAME, name, f"1 plain HF forward ({what})", figures["hf"], unit=unit,
                note=f"batch {settings.batch} × {settings.seq} tokens")]
    for key, label in (("raw", "2 raw nnsight, all layers saved"), ("ours", "3 nnrosetta, all layers saved")):
        rows.append(Row(NAME, name, label, figures[key], unit=unit, reference="vs 1",
                        ratio=figures[key] / figures["hf"] if figures["hf"] else None))
    if "cache" in figures:
        rows.append(Row(NAME, name, "run_with_cache, every layer (default names)", figures["cache"], unit=unit,
                        reference="vs 1", ratio=figures["cache"] / figures["hf"] if figures["hf"] else None,
                        note=f"cache holds {figures['cache_nbytes']:.1f} MiB"))
    else:
        rows.append(missing(NAME, name, "run_with_cache", "nnrosetta.interventions.run_with_cache not importable"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="peak-memory probe for one shape (started by bench/run.py)")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--settings", required=True, help="Settings as JSON")
    args = parser.parse_args()
    values = json.loads(args.settings)
    values["dtype"] = getattr(torch, values["dtype"])
    warnings.filterwarnings("ignore")
    print(json.dumps(measure(args.shape, Settings(**values))))


if __name__ == "__main__":
    main()
