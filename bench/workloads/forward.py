"""Workloads 1-3: a forward pass, plain and traced, saving every layer's output.

1. plain HuggingFace forward (the floor);
2. raw nnsight, saving each layer's output by the family's own module path;
3. `StandardizedTransformer`, saving ``layers_output[i]`` for every layer.
Target: 3 costs at most 1.05x 2 (the standard names are free).
"""

from __future__ import annotations

import torch

from ..context import Models, Settings
from ..report import Row
from ..shapes import token_batch
from ..timing import TARGET_REPEATS, compare

NAME_1 = "1 forward: plain HF (floor)"
NAME_2 = "2 trace, save all layers: raw nnsight"
NAME_3 = "3 trace, save all layers: nnrosetta"
TARGET_3_VS_2 = 1.05


def plain_forward(models: Models, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return models.hf(input_ids).logits


def raw_nnsight_all_layers(models: Models, input_ids: torch.Tensor) -> list:
    model = models.nnsight
    layers = models.native(model, "layers")
    saved: list = []
    with torch.no_grad(), model.trace(input_ids):
        for layer in layers:
            saved.append(layer.output.save())
    return saved


def nnrosetta_all_layers(models: Models, input_ids: torch.Tensor) -> list:
    model = models.nnrosetta
    saved: list = []
    with torch.no_grad(), model.trace(input_ids):
        for index in range(model.num_layers):
            saved.append(model.layers_output[index].save())
    return saved


def run(models: Models, settings: Settings) -> list[Row]:
    input_ids = token_batch(models.shape, settings.batch, settings.seq, settings.device)
    same = all(
        torch.equal(raw, ours)
        for raw, ours in zip(raw_nnsight_all_layers(models, input_ids), nnrosetta_all_layers(models, input_ids))
    )
    timings = compare(
        {
            "hf": lambda: plain_forward(models, input_ids),
            "raw": lambda: raw_nnsight_all_layers(models, input_ids),
            "ours": lambda: nnrosetta_all_layers(models, input_ids),
        },
        max(settings.repeats, TARGET_REPEATS),
        settings.warmup,
        settings.device,
    )
    shape = f"batch {settings.batch} × {settings.seq} tokens"
    name = models.shape.name
    return [
        Row(NAME_1, name, "model(input_ids)", timings.median("hf"), note=shape),
        Row(NAME_2, name, "layer.output.save() by native path", timings.median("raw"),
            reference="vs 1", ratio=timings.ratio("raw", "hf")),
        Row(NAME_3, name, "model.layers_output[i].save()", timings.median("ours"),
            reference="vs 2", ratio=timings.ratio("ours", "raw"), target=models.target(TARGET_3_VS_2),
            note=f"{timings.ratio('ours', 'hf'):.3f}× vs 1; saved tensors "
            + ("identical to 2" if same else "DIFFER from 2")),
    ]
