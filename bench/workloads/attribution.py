"""Workload 6: attribution patching over every MLP output and position, batch 32.

The floor is plain HuggingFace with forward hooks: a clean run caching the MLP
outputs, a corrupted run with autograd on keeping them, one ``autograd.grad`` of
the metric (mean logit of the clean run's top token) with respect to them, and
(clean - corrupted) . gradient per layer and position. Both sides compute the
same matrix (checked to agree).
"""

from __future__ import annotations

import torch

from ..context import Models, Settings
from ..prompts import prompts
from ..report import Row, missing
from ..timing import compare
from .patching import counting

NAME = "6 attribution patching: all MLP outputs × positions"


def plain_hf_attribution(models: Models, clean: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    model = models.hf
    mlps = [getattr(block, models.shape.native["mlp"]) for block in models.native(model, "layers")]
    seen: dict[int, torch.Tensor] = {}

    def keep(layer: int):
        return lambda _m, _i, output: seen.__setitem__(layer, output)

    handles = [mlp.register_forward_hook(keep(layer)) for layer, mlp in enumerate(mlps)]
    try:
        with torch.no_grad():
            clean_logits = model(clean).logits[:, -1]
            clean_values = [seen[layer] for layer in range(len(mlps))]
        answer = clean_logits.argmax(dim=-1)
        rows = torch.arange(clean.shape[0], device=clean.device)
        with torch.enable_grad():
            score = model(corrupted).logits[:, -1][rows, answer].mean()
            corrupted_values = [seen[layer] for layer in range(len(mlps))]
            gradients = torch.autograd.grad(score, corrupted_values)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack([
        ((clean_value - corrupted_value.detach()) * gradient).sum(dim=(0, 2))
        for clean_value, corrupted_value, gradient in zip(clean_values, corrupted_values, gradients)
    ])


def run(models: Models, settings: Settings) -> list[Row]:
    model = models.shape.name
    try:
        from nnrosetta.interventions import attribution_patching
    except ImportError as error:
        return [missing(NAME, model, "attribution_patching", f"nnrosetta.interventions not importable ({error})")]
    clean_texts = prompts(settings.patch_batch, settings.patch_seq, seed=2)
    corrupted_texts = prompts(settings.patch_batch, settings.patch_seq, seed=3)
    tokenize = models.nnrosetta.tokenizer
    clean = tokenize(clean_texts, return_tensors="pt")["input_ids"].to(settings.device)
    corrupted = tokenize(corrupted_texts, return_tensors="pt")["input_ids"].to(settings.device)

    def floor() -> torch.Tensor:
        return plain_hf_attribution(models, clean, corrupted)

    def ours() -> torch.Tensor:
        return attribution_patching(models.nnrosetta, clean_texts, corrupted_texts, component="mlps")

    with counting(models.hf) as floor_count:
        expected = floor()
    with counting(models.nnrosetta._module) as our_count:
        result = ours()
    scale = expected.abs().max().item() or 1.0
    difference = (result.cpu() - expected.cpu()).abs().max().item() / scale
    timings = compare({"hf": floor, "ours": ours}, settings.repeats, settings.warmup, settings.device)
    shape = f"batch {settings.patch_batch} × {settings.patch_seq} tokens"
    return [
        Row(NAME, model, "plain HF hooks + autograd.grad (floor)", timings.median("hf"),
            note=f"{shape}; {floor_count} + 1 backward"),
        Row(NAME, model, "nnrosetta.interventions.attribution_patching", timings.median("ours"),
            reference="vs floor", ratio=timings.ratio("ours", "hf"),
            note=f"{our_count} + 1 backward; max relative |Δ| vs floor {difference:.1e}"),
    ]
