"""Workload 5: activation patching of MLP outputs, batch 32.

- single: one MLP layer (the middle one), one position (the last), the protocol
  of the NNsight paper's Table 1;
- sweep: every layer x every position of a short prompt (batch 8), on the run's first
  shape only (``Settings.sweep_shape``), to keep the command within its time
  budget; its untimed agreement run is its warm-up.
The floor is plain HuggingFace with forward hooks: a clean run caching the MLP
outputs, the corrupted run, and one patched run per (layer, position). Both
sides compute the same effect matrix, metric(patched) - metric(corrupted) with
the metric the mean logit of the clean run's top token (checked to agree), and
report the forward passes and rows they used.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

from ..context import Models, Settings
from ..prompts import prompts
from ..report import Row, missing
from ..timing import compare

NAME_SINGLE = "5 activation patching: 1 MLP layer, 1 position"
NAME_SWEEP = "5 activation patching: layers × positions sweep"
SWEEP_RUNS_PER_PASS = 8


@dataclass
class PassCounter:
    """Forward passes of a model and the rows (batch entries) they processed."""

    passes: int = 0
    rows: int = 0

    def __str__(self) -> str:
        return f"{self.passes} forward passes, {self.rows} rows"


@contextmanager
def counting(module: torch.nn.Module) -> Iterator[PassCounter]:
    counter = PassCounter()

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        counter.passes += 1
        counter.rows += int(ids.shape[0]) if ids is not None else 0

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counter
    finally:
        handle.remove()


def plain_hf_patching(models: Models, clean: torch.Tensor, corrupted: torch.Tensor,
                      layers: list[int], positions: list[int]) -> torch.Tensor:
    """The effect matrix (layers, positions) with forward hooks on a plain HF model."""
    model = models.hf
    mlps = [getattr(block, models.shape.native["mlp"]) for block in models.native(model, "layers")]
    cached: dict[int, torch.Tensor] = {}

    def keep(layer: int):
        return lambda _m, _i, output: cached.__setitem__(layer, output.detach())

    with torch.no_grad():
        handles = [mlps[layer].register_forward_hook(keep(layer)) for layer in layers]
        clean_logits = model(clean).logits[:, -1]
        for handle in handles:
            handle.remove()
        answer = clean_logits.argmax(dim=-1)
        rows = torch.arange(clean.shape[0], device=clean.device)
        metric = lambda logits: logits[rows, answer].mean()  # noqa: E731
        baseline = metric(model(corrupted).logits[:, -1])
        effects = torch.empty(len(layers), len(positions))
        for i, layer in enumerate(layers):
            for j, position in enumerate(positions):

                def patch(_m, _i, output, layer=layer, position=position):
                    output = output.clone()
                    output[:, position] = cached[layer][:, position]
                    return output

                handle = mlps[layer].register_forward_hook(patch)
                effects[i, j] = float(metric(model(corrupted).logits[:, -1]) - baseline)
                handle.remove()
    return effects


def _rows_for(models: Models, settings: Settings, batch: int, seq: int, layers: list[int],
              positions: list[int], name: str, batch_size: Optional[int], warmup: int) -> list[Row]:
    from nnrosetta.interventions import activation_patching

    clean_texts = prompts(batch, seq, seed=2)
    corrupted_texts = prompts(batch, seq, seed=3)
    tokenize = models.nnrosetta.tokenizer
    clean = tokenize(clean_texts, return_tensors="pt")["input_ids"].to(settings.device)
    corrupted = tokenize(corrupted_texts, return_tensors="pt")["input_ids"].to(settings.device)

    def floor() -> torch.Tensor:
        return plain_hf_patching(models, clean, corrupted, layers, positions)

    def ours() -> torch.Tensor:
        return activation_patching(models.nnrosetta, clean_texts, corrupted_texts, layers=layers,
                                   positions=positions, component="mlps", batch_size=batch_size)

    with counting(models.hf) as floor_count:
        expected = floor()
    with counting(models.nnrosetta._module) as our_count:
        result = ours()
    difference = (result.cpu() - expected).abs().max().item()
    timings = compare({"hf": floor, "ours": ours}, settings.repeats, warmup, settings.device)
    model = models.shape.name
    shape = f"batch {batch} × {seq} tokens, {len(layers)}×{len(positions)} patches"
    return [
        Row(name, model, "plain HF forward hooks (floor)", timings.median("hf"), note=f"{shape}; {floor_count}"),
        Row(name, model, "nnrosetta.interventions.activation_patching", timings.median("ours"),
            reference="vs floor", ratio=timings.ratio("ours", "hf"),
            note=f"{our_count}; max |Δeffect| vs floor {difference:.1e}"),
    ]


def run(models: Models, settings: Settings) -> list[Row]:
    model = models.shape.name
    try:
        import nnrosetta.interventions  # noqa: F401
    except ImportError as error:
        return [missing(NAME_SINGLE, model, "activation_patching", f"nnrosetta.interventions not importable ({error})")]
    num_layers = models.nnrosetta.num_layers
    single = _rows_for(models, settings, settings.patch_batch, settings.patch_seq, [num_layers // 2],
                       [settings.patch_seq - 1], NAME_SINGLE, None, settings.warmup)
    if model != settings.sweep_shape:
        return single
    sweep = _rows_for(models, settings, settings.sweep_batch, settings.sweep_seq, list(range(num_layers)),
                      list(range(settings.sweep_seq)), NAME_SWEEP, SWEEP_RUNS_PER_PASS, warmup=0)
    return single + sweep
