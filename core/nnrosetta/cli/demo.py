"""``nnrosetta demo``: the same intervention code on tiny models of every installed family.

Offline: each model is a seeded random-weight tiny model built from its adapter's
tiny config, saved to a temporary folder and loaded back by path.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from rich.console import Console
from rich.table import Table

from ..model import StandardizedTransformer
from ..registry import default_registry

NAME = "demo"
HELP = "run one intervention script on a tiny model of each installed family (offline)"
PROMPTS = ["The capital of France is", "The cat sat on the"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--types", default="", help="comma-separated model types (default: the first of each adapter)")


def study(model: StandardizedTransformer) -> dict[str, str]:
    """Read every layer, steer the middle one, and report what was read and what changed."""
    middle = model.num_layers // 2
    read: list = []
    with torch.no_grad(), model.trace(PROMPTS):
        for i in range(model.num_layers):
            read.append(model.layers_output[i][:, -1].norm(dim=-1).save())
        clean = model.logits[:, -1].save()
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(model.hidden_size, generator=generator)
    direction = direction / direction.norm()
    with torch.no_grad(), model.trace(PROMPTS):
        model.steer(middle, direction, factor=8.0)
        steered = model.logits[:, -1].save()
    top = lambda logits: [repr(model.tokenizer.decode([i])) for i in logits.argmax(-1).tolist()]  # noqa: E731
    return {
        "layers": str(model.num_layers),
        "|h| per layer (row 0)": " ".join(f"{n[0]:.2f}" for n in read),
        "top tokens": " ".join(top(clean)),
        "steered layer": str(middle),
        "top tokens steered": " ".join(top(steered)),
        "max |Δlogit|": f"{(steered - clean).abs().max():.3f}",
    }


def run(args: argparse.Namespace) -> int:
    from nnrosetta_conformance.tiny import save_tiny

    registry = default_registry()
    wanted = [t for t in args.types.split(",") if t]
    types = wanted or [a.model_types[0] for a in registry.adapters() if a.model_types[0] in a.tiny_configs]
    console = Console()
    table = Table(title="Same code, every family (tiny random-weight models, loaded by path)")
    table.add_column("model type", no_wrap=True)
    with tempfile.TemporaryDirectory() as folder:
        for model_type in types:
            path = save_tiny(model_type, f"{folder}/{model_type}")
            result = study(StandardizedTransformer(str(path)))
            if len(table.columns) == 1:
                for key in result:
                    table.add_column(key)
            table.add_row(model_type, *result.values())
    console.print(table)
    console.print(f"Prompts: {PROMPTS}; steering adds a random unit vector x8 after the steered layer.")
    return 0
