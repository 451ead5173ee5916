"""Timing: variants of one workload measured interleaved, so load drift hits them alike.

A shared 2-core machine is noisy. Running variant A five times and then B five
times lets a burst of someone else's work land on one of them only; running
A, B, A, B, ... (rotating who goes first) and taking the median of the per-round
ratios compares each pair under the same conditions.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch


#: Rounds for the comparisons that have a 1.05x target: a 5% band needs more than 5 samples
#: on a shared machine, and these workloads are the cheap ones.
TARGET_REPEATS = 9


@dataclass(frozen=True)
class Timings:
    """Seconds per run of each variant, one entry per round (same index, same round)."""

    samples: Mapping[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of ``name``'s time divided by ``reference``'s in the same round."""
        pairs = zip(self.samples[name], self.samples[reference])
        return statistics.median(a / b for a, b in pairs)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(function: Callable[[], object], device: str) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def compare(
    variants: Mapping[str, Callable[..., object]],
    repeats: int,
    warmup: int,
    device: str,
    setup: Optional[Mapping[str, Callable[[], Any]]] = None,
) -> Timings:
    """Run every variant ``warmup`` times, then ``repeats`` interleaved rounds; return the times.

    A variant named in ``setup`` is called with a fresh ``setup[name]()`` each time,
    made outside the timed region (a never-wrapped model copy for the load workload).
    """
    names = list(variants)
    setup = setup or {}

    def call(name: str) -> Callable[[], object]:
        if name not in setup:
            return variants[name]
        argument = setup[name]()
        return lambda: variants[name](argument)

    for _ in range(warmup):
        for name in names:
            call(name)()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            ready = call(name)
            gc.collect()
            samples[name].append(time_once(ready, device))
            del ready
    return Timings(samples)
