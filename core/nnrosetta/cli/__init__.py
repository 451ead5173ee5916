"""The ``nnrosetta`` command: one subcommand per module in this package.

Each subcommand module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; adding one is a module plus a line in `COMMANDS`.
Errors nnrosetta raises on purpose print one line and exit 2 (a traceback only
with ``--verbose``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Optional, Sequence

from rich.console import Console

from ..errors import NnrosettaError

COMMANDS = ("adapters", "check", "demo", "lens")

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnrosetta", description="One interface to transformer internals.")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (NnrosettaError, FileNotFoundError) as error:
        if args.verbose:
            traceback.print_exc()
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
