"""`nnrosetta adapters` shows each hybrid type's layer kinds, read from its default config."""

from __future__ import annotations

from transformers import AutoConfig

from nnrosetta.cli import main as cli_main
from nnrosetta.cli.adapters import describe
from nnrosetta.registry import default_registry


def test_the_listing_gives_the_kinds_the_adapter_reads_from_the_default_config(capsys):
    registry = default_registry()
    (entry,) = [t for a in describe(registry)["adapters"] for t in a["types"] if t["model_type"] == "qwen3_next"]
    expected = list(registry.resolve("qwen3_next").layer_kinds.kinds(AutoConfig.for_model("qwen3_next")))
    assert entry["layer_kinds"] == expected
    assert set(expected) == {"linear_attention", "attention"}

    assert cli_main(["adapters"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    count = expected.count("linear_attention")
    assert f"layer kinds: linear_attention {count}, attention {len(expected) - count} of {len(expected)} layers" in shown
