"""What every workload gets: the run's settings and, per shape, three copies of one model.

The plain-HuggingFace floor needs a model nnsight has never wrapped: wrapping
replaces each module's ``forward`` in place, so the floor, the raw nnsight
wrapper and the `StandardizedTransformer` each get their own copy, built from
the same seed (identical weights, checked by comparing outputs).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from nnsight import TransformersModel
from transformers import PreTrainedModel

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tokenizer

from .shapes import Shape, build_model


@dataclass(frozen=True)
class Settings:
    """How the run measures: device, dtype, repeats, and the batch sizes of the workloads.

    The activation-patching sweep (layers x positions, one forward per patch on the
    floor side) is the longest workload, so it runs on ``sweep_shape`` only.
    """

    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    repeats: int = 5
    warmup: int = 1
    batch: int = 8
    seq: int = 32
    patch_batch: int = 32
    patch_seq: int = 16
    sweep_batch: int = 8
    sweep_seq: int = 4
    sweep_shape: str = ""
    quick: bool = False
    #: The parts of a workload that has them (workload 10: import, load, sweep, lens, check); empty: all.
    parts: tuple[str, ...] = ()


def wrap_raw_nnsight(model: PreTrainedModel) -> TransformersModel:
    """nnsight's own wrapper, no renaming: what a researcher writes without nnrosetta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformersModel(model, tokenizer=build_tokenizer(), task="text-generation")


def wrap_nnrosetta(model: PreTrainedModel, check: bool = True) -> StandardizedTransformer:
    return StandardizedTransformer(model, tokenizer=build_tokenizer(), check=check)


@dataclass
class Models:
    """Three identical copies of one shape: plain HF, raw nnsight, nnrosetta."""

    shape: Shape
    settings: Settings
    cache: dict[str, Any] = field(default_factory=dict)

    def _get(self, key: str, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    @property
    def hf(self) -> PreTrainedModel:
        return self._get("hf", lambda: build_model(self.shape, self.settings.device, self.settings.dtype))

    @property
    def nnsight(self) -> TransformersModel:
        return self._get("nnsight", lambda: wrap_raw_nnsight(self.fresh_hf()))

    @property
    def nnrosetta(self) -> StandardizedTransformer:
        return self._get("nnrosetta", lambda: wrap_nnrosetta(self.fresh_hf()))

    def fresh_hf(self) -> PreTrainedModel:
        """Another copy of the same weights, never wrapped before."""
        return build_model(self.shape, self.settings.device, self.settings.dtype)

    def target(self, ratio: float) -> Optional[float]:
        """The target ratio, or None on tiny models: there a fixed cost of ~1-2 ms per trace
        dominates a forward of a few ms, and the targets are about real-sized models."""
        return None if self.shape.tiny else ratio

    def native(self, wrapped: Any, role: str) -> Any:
        """The module (or envoy) of ``wrapped`` at the family's own path for ``role`` (``layers``, ...)."""
        return functools.reduce(getattr, self.shape.native[role].split("."), wrapped)

    def release(self) -> None:
        self.cache.clear()
