"""The ``nnrosetta`` command: one subcommand per module in this package.

Each subcommand module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. The core's own are listed in `BUILT_IN`; other distributions
add theirs under the entry-point group ``nnrosetta.commands`` (the conformance
suite ships ``check`` that way, so the core never imports the suite).

Start-up stays fast because only the chosen subcommand's module is imported
(``nnrosetta --help`` reads each module's ``HELP`` from its source), and a
subcommand imports torch, transformers and nnsight inside ``run``.

Every error prints one line and exits 2 (the traceback only with ``--verbose``):
errors nnrosetta raises, files that cannot be read or written, usage mistakes.
Text from users, models and errors is never read as rich markup or emoji codes.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional, Sequence

from ..errors import NnrosettaError

if TYPE_CHECKING:
    from rich.console import Console

#: The core's own subcommands: name -> module.
BUILT_IN = {"adapters": f"{__name__}.adapters", "demo": f"{__name__}.demo", "lens": f"{__name__}.lens"}
#: Entry points adding subcommands: ``name = "module"``.
COMMAND_GROUP = "nnrosetta.commands"


def command_modules() -> dict[str, str]:
    """Every subcommand and the module that implements it, read from metadata (nothing imported)."""
    from importlib import metadata

    found = dict(BUILT_IN)
    for entry_point in metadata.entry_points(group=COMMAND_GROUP):
        found.setdefault(entry_point.name, entry_point.value)
    return dict(sorted(found.items()))


COMMANDS = tuple(BUILT_IN)

USAGE_ERROR = 2
INTERRUPTED = 130
PLUGIN_GROUP = "nnrosetta"


def console(stderr: bool = False, soft_wrap: bool = False) -> "Console":
    """A console that prints strings literally: no markup, no emoji codes, no highlighting."""
    from rich.console import Console  # imported when something is printed: --help stays light

    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=soft_wrap)


def one_line(message: object) -> str:
    """A message on one line (HuggingFace quotes multi-line errors)."""
    return " ".join(str(message).split())


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, pointing at the right ``--help``."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message}; see `{self.prog} --help`.")
        self.exit(USAGE_ERROR)


class _VersionAction(argparse.Action):
    """``--version``: the core and every installed plugin, read from package metadata (nothing imported)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        print(versions_text())
        parser.exit(0)


def versions_text() -> str:
    """``nnrosetta 0.2.0`` then one line per plugin distribution, then the libraries it runs on."""
    from importlib import metadata

    from .. import __version__

    lines = [f"nnrosetta {__version__}"]
    plugins = sorted({(ep.dist.name, ep.dist.version, ep.name) for ep in metadata.entry_points(group=PLUGIN_GROUP) if ep.dist})
    lines += [f"  {name} {version} (plugin {entry})" for name, version, entry in plugins] or ["  no plugins installed"]
    libraries = []
    for library in ("torch", "transformers", "nnsight"):
        try:
            libraries.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            libraries.append(f"{library} not installed")
    python = ".".join(str(part) for part in sys.version_info[:3])
    lines.append(f"on python {python}, " + ", ".join(libraries))
    return "\n".join(lines)


def _summary(module_name: str) -> str:
    """A subcommand's ``HELP`` read from its source, so the overview imports no subcommand."""
    spec = importlib.util.find_spec(module_name)
    if spec is not None and spec.origin:
        for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "HELP" for t in node.targets):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    return node.value.value
    return importlib.import_module(module_name).HELP


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named on the command line (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (all when ``argv`` is None) is imported."""
    parser = _Parser(prog="nnrosetta", description="One interface to transformer internals.")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action=_VersionAction, help="show the versions of nnrosetta, its plugins and libraries")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen(argv)
    for name, module_name in command_modules().items():
        if argv is not None and name != chosen:
            commands.add_parser(name, help=_summary(module_name))
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def writable_file(path: Optional[str], option: str) -> None:
    """Fail before any work when ``path`` cannot be written (a folder, a missing folder, no permission)."""
    if not path:
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise NnrosettaError(f"{option} {path}: that is a folder; give a file name, e.g. {target / 'report'}.")
    if target.parent.exists() and not target.parent.is_dir():
        raise NnrosettaError(f"{option} {path}: {str(target.parent)!r} is a file, not a folder; choose another path.")
    if not target.parent.is_dir():
        raise NnrosettaError(f"{option} {path}: the folder {str(target.parent)!r} does not exist; create it first.")
    existed = target.exists()
    try:
        with open(target, "a"):
            pass
    except OSError as error:
        raise NnrosettaError(f"{option} {path}: cannot write there ({error.strerror}); choose another path.") from error
    if not existed:
        target.unlink()


def _quiet_progress_bars() -> None:
    """HuggingFace's per-load progress bars would bury the command's own output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None:
        transformers_logging.disable_progress_bar()


def _print_error(message: str) -> None:
    from rich.text import Text

    console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "bold red"), one_line(message)))


def _describe(error: BaseException) -> str:
    if isinstance(error, NnrosettaError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error} (an unexpected error; --verbose shows the traceback)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as done:
        return int(done.code or 0)
    _quiet_progress_bars()
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        _print_error("interrupted.")
        return INTERRUPTED
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        _print_error(_describe(error))
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
