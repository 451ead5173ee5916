"""`nnrosetta demo`: the same intervention code runs on tiny models loaded by path."""

from __future__ import annotations

from nnrosetta.cli import main as cli_main


def test_demo_reads_and_steers_each_requested_type(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert cli_main(["demo", "--types", "llama,gpt2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert {"llama", "gpt2"} <= set(rows)
    for model_type in ("llama", "gpt2"):
        change = float(rows[model_type].split("│")[-2])
        assert change > 0, f"steering changed nothing on {model_type}"
