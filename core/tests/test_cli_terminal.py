"""The ``nnrosetta`` command at a person's terminal: fast start, literal text, 80 columns, one-line errors.

Start-up is checked in fresh interpreters, where it is measured and printed; the
assertion is the property that makes it fast (torch, transformers and nnsight
are not imported), since wall-clock bounds on a shared machine are not stable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import nnrosetta
from nnrosetta.cli import command_modules, main

COMMANDS = tuple(command_modules())

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "nnsight")
WIDTH = 80


def _fresh(code: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``code`` in a new interpreter; returns the process and its wall time."""
    environment = {**os.environ, "COLUMNS": str(WIDTH)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    return done, time.perf_counter() - start


def _loaded_after(statement: str) -> tuple[list[str], float]:
    """Which of torch, transformers, nnsight ``statement`` imports, and how long the interpreter ran."""
    code = (
        "import sys\n"
        f"try:\n    {statement}\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done, seconds = _fresh(code)
    assert done.returncode == 0, done.stderr
    line = [line for line in done.stdout.splitlines() if line.startswith("LOADED=")][-1]
    return [name for name in line[len("LOADED=") :].split(",") if name], seconds


def test_import_nnrosetta_loads_no_heavy_library() -> None:
    loaded, seconds = _loaded_after("import nnrosetta")
    print(f"python -c 'import nnrosetta': {seconds:.2f} s")
    assert loaded == []


@pytest.mark.parametrize("arguments", [["--help"], ["--version"]] + [[name, "--help"] for name in COMMANDS], ids=" ".join)
def test_help_and_version_load_no_heavy_library(arguments: list[str]) -> None:
    loaded, seconds = _loaded_after(f"from nnrosetta.cli import main; main({arguments!r})")
    print(f"nnrosetta {' '.join(arguments)}: {seconds:.2f} s")
    module = command_modules().get(arguments[0], "nnrosetta.cli")
    assert loaded == [], f"`nnrosetta {' '.join(arguments)}` imported {loaded}: import them inside run() in {module}"


def test_every_public_name_resolves_and_lists() -> None:
    resolved = {name: getattr(nnrosetta, name) for name in nnrosetta.__all__}
    assert all(value is not None for value in resolved.values())
    assert set(nnrosetta.__all__) <= set(dir(nnrosetta))
    assert nnrosetta.registry.default_registry is nnrosetta.default_registry  # submodules stay reachable
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        nnrosetta.no_such_name  # noqa: B018


def test_version_is_one_number_everywhere(capsys) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert nnrosetta.__version__ == declared == metadata.version("nnrosetta") == "0.2.0"
    with pytest.raises(SystemExit) as done:
        from nnrosetta.cli import build_parser

        build_parser(["--version"]).parse_args(["--version"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"nnrosetta {declared}"
    for entry_point in metadata.entry_points(group="nnrosetta"):
        assert f"  {entry_point.dist.name} {entry_point.dist.version} (plugin {entry_point.name})" in lines
    assert lines[-1].startswith("on python ") and f"torch {metadata.version('torch')}" in lines[-1]


def test_adapters_reads_at_80_columns(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    assert main(["adapters", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["adapters"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    words = set(out.replace(",", " ").split())
    for adapter in data["adapters"]:
        assert f"{adapter['name']}  {adapter['plugin']}" in lines, f"no heading line for adapter {adapter['name']}"
        broken = [t for t in adapter["model_types"] + adapter["capabilities"] if t not in words]
        assert broken == [], f"split across lines or missing: {broken}"
    assert sum(line.startswith("  model types   ") for line in lines) == len(data["adapters"])


def test_check_prints_target_text_literally(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    assert main(["check", "tiny:llama", "--checks", "structure"]) == 0
    out = capsys.readouterr().out
    assert "\N{LLAMA}" not in out and "tiny:llama" in out.replace("\n", " ")
    assert max(len(line) for line in out.splitlines()) <= WIDTH


@pytest.mark.parametrize(
    "arguments, literal",
    [
        (["check", "tiny:[bold]llama"], "no installed adapter claims model_type '[bold]llama'"),
        (["check", "tiny:llama", "--checks", "structure,[display]"], "unknown conformance check(s): [display]"),
        (["check", "tiny:llama", "--adapter", ":llama:"], "no installed adapter is named ':llama:'"),
        (["check", "tiny:llama", "--json", "/no/such/[red]folder/report.json"], "the folder '/no/such/[red]folder'"),
    ],
    ids=["markup-in-target", "markup-in-check-name", "emoji-code-in-adapter", "markup-in-path"],
)
def test_errors_print_user_text_literally(arguments, literal, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    assert main(arguments) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and literal in lines[0], captured.err
    assert "\N{LLAMA}" not in captured.err


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["check", "tiny:llama", "--json", "{folder}"], "--json {folder}: that is a folder; give a file name"),
        (["check", "tiny:llama", "--markdown", "{folder}"], "--markdown {folder}: that is a folder"),
        (["check", "tiny:llama", "--json", "/sys/report.json"], "--json /sys/report.json: cannot write there"),
        (["lens", "a [bold] prompt :llama:", "--model", "tiny:llama", "--out", "{folder}/lens.html"],
         "--out {folder}/lens.html: that is a folder"),
        (["lens", "prompt", "--model", "tiny:llama", "--out", "/sys/lens.html"], "--out /sys/lens.html: cannot write there"),
        (["lens", "prompt", "--model", "tiny:llama", "--out", "{file}/lens.html"], "--out {file}/lens.html: '{file}' is a file, not a folder"),
        ([], "the following arguments are required: COMMAND; see `nnrosetta --help`."),
        (["chek"], "invalid choice: 'chek'"),
        (["check", "tiny:llama", "--checks"], "argument --checks: expected one argument; see `nnrosetta check --help`."),
        (["lens", "--model", "tiny:llama"], "the following arguments are required: prompt"),
    ],
    ids=["json-folder", "markdown-folder", "json-unwritable", "out-folder", "out-unwritable", "out-under-a-file",
         "no-command", "unknown-command", "option-without-value", "missing-argument"],
)
def test_every_error_is_one_line_and_exit_status_2(arguments, expected, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    folder = tmp_path / "out"
    (folder / "lens.html").mkdir(parents=True)
    regular = tmp_path / "regular-file"
    regular.write_text("")
    fill = lambda text: text.replace("{folder}", str(folder)).replace("{file}", str(regular))  # noqa: E731

    code = main([fill(a) for a in arguments])

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert fill(expected) in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "regular-file"]  # nothing written on the way


def test_the_installed_command_prints_one_line_and_exits_2(tmp_path) -> None:
    command = Path(sys.executable).with_name("nnrosetta")
    environment = {**os.environ, "COLUMNS": str(WIDTH)}
    done = subprocess.run(
        [str(command), "check", "tiny:llama", "--json", str(tmp_path)], capture_output=True, text=True, env=environment
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: --json {tmp_path}: that is a folder; give a file name, e.g. {tmp_path / 'report'}."]


def test_verbose_adds_the_traceback_of_a_refused_path(tmp_path, capsys) -> None:
    assert main(["--verbose", "check", "tiny:llama", "--json", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1].startswith("error: --json")
