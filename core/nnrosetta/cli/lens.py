"""``nnrosetta lens "PROMPT" --model TARGET --out lens.html``: a logit-lens heatmap of one prompt.

TARGET is what ``nnrosetta check`` takes: a folder written by save_pretrained, a hub
id, or ``tiny:<model_type>`` (a seeded random-weight model, built offline). The file
type follows the suffix: ``.html`` (self-contained, plotly) or ``.png`` (matplotlib).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidInputError
from . import console, writable_file

NAME = "lens"
HELP = "write a logit-lens heatmap (layers x tokens, top token per cell) of a prompt as HTML or PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the prompt to read")
    parser.add_argument("--model", required=True, help="a folder, a hub id, or tiny:<model_type> (offline)")
    parser.add_argument("--out", default="lens.html", help="output file, .html or .png (default lens.html)")
    parser.add_argument("--adapter", default=None, help="force an installed adapter by name")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm", ".png"):
        raise InvalidInputError(f"--out {args.out!r} must end in .html or .png (the file type follows it).")
    writable_file(args.out, "--out")
    from ..display import logit_lens_heatmap
    from ..model import StandardizedTransformer  # torch and the model code load only from here

    model = StandardizedTransformer(args.model, adapter=args.adapter)
    heatmap = logit_lens_heatmap(model, args.prompt)
    heatmap.save(out)
    console().print(f"wrote {out} ({len(heatmap.row_labels)} layers x {len(heatmap.column_labels)} tokens)", soft_wrap=True)
    return 0
