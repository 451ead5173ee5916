"""Peak memory of one call, above what was resident just before it.

CPU: the process's peak resident set (VmHWM) is reset to the current RSS through
``/proc/self/clear_refs`` before the call and read after it. The command sets
``MALLOC_MMAP_THRESHOLD_`` for its memory probes so that freed tensors go back to
the system instead of staying in malloc's free lists, where the next call would
reuse them without raising the RSS. CUDA: torch's peak-allocated counter.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable, Optional

import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK_RSS = "5"


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{STATUS} has no {field} line; peak RSS needs Linux's /proc.")


def rss_peak_supported() -> bool:
    try:
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def peak_bytes(function: Callable[[], object], device: str) -> Optional[int]:
    """Bytes of memory the call needed above what was in use before it (None if unmeasurable)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        function()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    if not rss_peak_supported():
        return None
    before = _status_kib("VmRSS")
    CLEAR_REFS.write_text(RESET_PEAK_RSS)
    function()
    return (_status_kib("VmHWM") - before) * 1024
