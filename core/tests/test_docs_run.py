"""Every ```python block of README.md and of docs/*.md runs, as a reader would copy it.

Conventions a page may rely on:

- The python blocks of one page run in order, in one namespace, in a fresh
  working folder: a later block may use the names an earlier one defined
  (``model``, ``prompts``), and files a block writes land in that folder.
- A block directly preceded by a ``<!-- not-run: why -->`` line is a
  declaration fragment (``rename=...``): it is compiled, so it stays valid
  Python, but not run. The test prints how many it skipped; use it for
  fragments only, never to hide a snippet that fails.
- The model hub is unreachable here. A string literal equal to a hub id of
  `STAND_INS` is replaced, before its block runs, by the folder of a seeded
  tiny random-weight model of that checkpoint's model type, built offline with
  ``nnrosetta_conformance.tiny.save_tiny`` and sized (8 layers, 8 heads) for
  the layer and head indices the examples use (every id has an ``org/``, so no
  model type or file name is mistaken for one). Nothing else of a block is
  changed. ``StandardizedTransformer("...")`` given a string that is neither a
  key of the table nor an existing folder fails the test: add the checkpoint's
  model type to `STAND_INS`.
- ``tiny:<model_type>`` targets and folders written by an earlier block need
  nothing: they work offline as they are.

A failing block fails with the page, its line in the page, and the traceback,
whose line numbers are the page's own.
"""

from __future__ import annotations

import ast
import re
import shlex
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"^<!--\s*not-run\b.*-->\s*$")

#: Hub ids the pages name, and the model type of each checkpoint (its stand-in's type).
STAND_INS = {
    "Qwen/Qwen3-0.6B": "qwen3",
    "meta-llama/Llama-3.1-8B": "llama",
    "google/gemma-2-2b": "gemma2",
    "mistralai/Mixtral-8x7B-v0.1": "mixtral",
    "openai-community/gpt2": "gpt2",
}
#: Sizes that fit the indices the examples use (layer 6, head 7, expert 3).
STAND_IN_SIZE = {"num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4, "hidden_size": 64, "head_dim": 8}
STAND_IN_SIZES = {
    "gpt2": {"n_layer": 8, "n_head": 8, "n_embd": 64},
    "gemma2": {**STAND_IN_SIZE, "layer_types": ["sliding_attention", "full_attention"] * 4},
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # the line of the page where the code starts
    language: str
    source: str
    run: bool


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with the line each starts at and its not-run mark."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        body = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(page, index + 2, fence.group(1), body, not NOT_RUN.match(before.strip())))
        index = end + 1
    return found


def python_pages() -> list[Path]:
    return [page for page in PAGES if any(b.language == "python" for b in blocks(page))]


class _StandIns(ast.NodeTransformer):
    """Replaces hub-id string literals with stand-in folders; records hub ids it cannot serve."""

    def __init__(self, folder_for) -> None:
        self.folder_for = folder_for
        self.unknown: list[str] = []

    def visit_Call(self, node: ast.Call) -> Any:
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name == "StandardizedTransformer" and node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
            if isinstance(value, str) and value not in STAND_INS and not Path(value).exists():
                self.unknown.append(value)
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, str) and node.value in STAND_INS:
            return ast.copy_location(ast.Constant(self.folder_for(node.value)), node)
        return node


@pytest.fixture(scope="module")
def stand_in_folder(tmp_path_factory):
    from nnrosetta_conformance.tiny import save_tiny

    built: dict[str, str] = {}

    def folder_for(hub_id: str) -> str:
        model_type = STAND_INS[hub_id]
        if model_type not in built:
            sizes = STAND_IN_SIZES.get(model_type, STAND_IN_SIZE)
            folder = tmp_path_factory.mktemp(f"stand-in-{model_type}")
            built[model_type] = str(save_tiny(model_type, folder, overrides=sizes))
        return built[model_type]

    return folder_for


def _compiled(block: Block, folder_for):
    padded = "\n" * (block.line - 1) + block.source  # tracebacks then give the page's line numbers
    # The absolute path: nnsight reads a trace's source from this file whatever the working folder.
    tree = ast.parse(padded, filename=str(block.page))
    if not block.run:
        return None, []
    stand_ins = _StandIns(folder_for)
    tree = ast.fix_missing_locations(stand_ins.visit(tree))
    return compile(tree, str(block.page), "exec"), stand_ins.unknown


@pytest.mark.parametrize("page", python_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_python_block_of_the_page_runs(page: Path, stand_in_folder, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    python = [b for b in blocks(page) if b.language == "python"]
    skipped = 0
    for block in python:
        code, unknown = _compiled(block, stand_in_folder)
        assert not unknown, (
            f"{page.name} line {block.line} loads {unknown} from the hub, which is unreachable here: "
            f"add its model type to STAND_INS in {Path(__file__).name}."
        )
        if code is None:
            skipped += 1
            continue
        try:
            exec(code, namespace)
        except Exception:
            pytest.fail(
                f"{page.name}: the python block at line {block.line} fails:\n{block.source}\n{traceback.format_exc()}",
                pytrace=False,
            )
    ran = len(python) - skipped
    print(f"{page.relative_to(ROOT)}: {ran} python block(s) ran, {skipped} not-run fragment(s) compiled only")
    assert ran > 0


def test_not_run_marks_only_declaration_fragments() -> None:
    """A not-run block must show a declaration with a `...` placeholder: anything else should run."""
    marked = [b for page in PAGES for b in blocks(page) if b.language == "python" and not b.run]
    runnable = [f"{b.page.name} line {b.line}" for b in marked if "..." not in b.source]
    assert not runnable, f"these blocks are marked not-run but have no placeholder; let them run: {runnable}"


def _command_lines(page: Path) -> list[tuple[int, list[str]]]:
    commands = []
    for block in blocks(page):
        if block.language not in ("bash", "sh", "console"):
            continue
        for offset, line in enumerate(block.source.splitlines()):
            words = shlex.split(line, comments=True)
            if words[:1] == ["nnrosetta"]:
                commands.append((block.line + offset, words[1:]))
    return commands


def test_every_nnrosetta_command_the_pages_show_is_accepted(capsys) -> None:
    """A shell line `nnrosetta ...` in a page names a real subcommand with options it takes."""
    from nnrosetta.cli import build_parser

    shown = [(page, line, argv) for page in PAGES for line, argv in _command_lines(page)]
    rejected = []
    for page, line, argv in shown:
        try:
            build_parser(argv).parse_args(argv)
        except SystemExit as exit:
            if exit.code != 0:
                rejected.append(f"{page.name} line {line}: nnrosetta {' '.join(argv)}")
    capsys.readouterr()
    assert len(shown) >= 5 and not rejected, rejected
