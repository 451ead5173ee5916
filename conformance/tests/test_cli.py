"""``nnrosetta check``: the table, JSON and markdown from one run, exit statuses, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

import nnrosetta.registry
from nnrosetta.cli import main
from nnrosetta_conformance.report import SYMBOLS
from nnrosetta_conformance.runner import single_threaded
from nnrosetta_conformance.tiny import build_tokenizer, save_tiny


@pytest.fixture(autouse=True)
def one_thread():
    with single_threaded():
        yield


def test_check_a_tiny_target_prints_a_table_and_writes_json_and_markdown(tmp_path: Path, capsys) -> None:
    json_path, markdown_path = tmp_path / "report.json", tmp_path / "matrix.md"

    code = main(["check", "tiny:gpt2", "--checks", "structure,fidelity,write_effect",
                 "--json", str(json_path), "--markdown", str(markdown_path)])

    out = capsys.readouterr().out
    assert code == 0
    assert "nnrosetta check tiny:gpt2: gpt2 via adapter" in out
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1:3] for row in table_rows] == [
        [f" {name:<12} ", " passed "] for name in ("structure", "fidelity", "write_effect")
    ]
    assert "all conform: 1 of 1 model(s) pass every check" in out
    data = json.loads(json_path.read_text())
    assert data["ok"] is True
    assert data["command"] == (
        f"nnrosetta check tiny:gpt2 --checks structure,fidelity,write_effect --json {json_path} --markdown {markdown_path}"
    )
    versions = data["versions"]
    assert versions["torch"] == torch.__version__ and versions["transformers"] == transformers.__version__
    assert versions["nnsight"] == "0.8.1"
    assert versions["plugins"]["gpt2"] == {"distribution": "nnrosetta-gpt2", "version": "0.1.0"}
    [report] = data["reports"]
    assert (report["model_type"], report["adapter"], report["plugin"]) == ("gpt2", "gpt2", "nnrosetta-gpt2 0.1.0")
    assert [(r["name"], r["status"]) for r in report["results"]] == [
        ("structure", "passed"), ("fidelity", "passed"), ("write_effect", "passed")
    ]
    markdown = markdown_path.read_text()
    assert "| model type | adapter | `structure` | `fidelity` | `write_effect` |" in markdown
    assert "| gpt2 | gpt2 | ✅ | ✅ | ✅ |" in markdown
    assert f"torch {torch.__version__}" in markdown and "nnrosetta-gpt2 0.1.0" in markdown


def test_check_a_saved_folder(tmp_path: Path, capsys) -> None:
    folder = save_tiny("qwen3", tmp_path / "qwen3-checkpoint")

    code = main(["check", str(folder), "--checks", "structure,fidelity,state_restored", "--json", str(tmp_path / "r.json")])

    assert code == 0
    assert "all conform: 1 of 1 model(s) pass every check" in capsys.readouterr().out
    [report] = json.loads((tmp_path / "r.json").read_text())["reports"]
    assert (report["target"], report["model_type"], report["adapter"]) == (str(folder), "qwen3", "llama")
    assert [r["status"] for r in report["results"]] == ["passed", "passed", "passed"]


def test_all_tiny_fails_when_a_check_fails_and_its_json_and_markdown_agree(
    example_registry, monkeypatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setattr(nnrosetta.registry, "_default_registry", example_registry)
    monkeypatch.setenv("COLUMNS", "80")
    json_path, markdown_path = tmp_path / "report.json", tmp_path / "matrix.md"

    code = main(["check", "--all-tiny", "--checks", "structure,accessor_shapes,residual_chain,final_projection",
                 "--json", str(json_path), "--markdown", str(markdown_path)])

    out = capsys.readouterr().out
    assert code == 1
    assert "failures: 1 of 2 model(s) pass every check" in out
    assert "gpt_neox / accessor_shapes (failed)" in out and "gpt_neox / residual_chain (xpassed)" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert sorted(row.split("│")[1:7] for row in out.splitlines() if row.startswith("│ gpt_neox")) == [
        [" gpt_neox   ", " example        ", "    4 ", "    0 ", "     0 ", "    0 "],
        [" gpt_neox   ", " example_broken ", "    1 ", "    0 ", "     0 ", "    3 "],
    ]
    data = json.loads(json_path.read_text())
    statuses = {r["adapter"]: {c["name"]: c["status"] for c in r["results"]} for r in data["reports"]}
    assert statuses == {
        "example": {"structure": "passed", "accessor_shapes": "passed", "residual_chain": "passed",
                    "final_projection": "passed"},
        "example_broken": {"structure": "passed", "accessor_shapes": "failed", "residual_chain": "xpassed",
                           "final_projection": "failed"},
    }
    markdown = markdown_path.read_text()
    for adapter, checks in statuses.items():
        row = f"| gpt_neox | {adapter} | " + " | ".join(SYMBOLS[s] for s in checks.values()) + " |"
        assert row in markdown
    assert "0 of 2 model types conform" not in markdown and "1 of 2 model types conform" in markdown
    assert "- `accessor_shapes` failed on gpt_neox: on a (3, " in markdown


@pytest.fixture
def only_llama_and_gpt2(monkeypatch) -> None:
    """The process-wide registry with only the llama and gpt2 plugins, so gpt_neox is unclaimed."""
    monkeypatch.setenv(nnrosetta.registry.ONLY_PLUGINS_ENV, "llama,gpt2")
    monkeypatch.setattr(nnrosetta.registry, "_default_registry", None)


def _saved_unclaimed_model(folder: Path) -> Path:
    """A real checkpoint folder of a type the llama and gpt2 plugins do not claim (gpt_neox)."""
    tokenizer = build_tokenizer()
    config = AutoConfig.for_model(
        "gpt_neox", hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        vocab_size=len(tokenizer),
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["check", "no-such-org/no-such-model"], "could not read a model config from 'no-such-org/no-such-model'"),
        (["check", "{tmp}"], "the folder '{tmp}' holds no model: there is no config.json in it."),
        (["check", "./no/such/folder"], "'./no/such/folder' is not a folder."),
        (["check", "tiny:gpt2", "--checks", "fidelity,fidelty"], "unknown conformance check(s): fidelty."),
        (["check", "tiny:no_such_type"], "no installed adapter claims model_type 'no_such_type'."),
        (["check", "{unclaimed}"], "no installed adapter claims model_type 'gpt_neox' or class GPTNeoXForCausalLM."),
        (["check", "tiny:gpt2", "--adapter", "nope"], "no installed adapter is named 'nope'."),
        (["check"], "give exactly one of TARGET"),
        (["check", "tiny:gpt2", "--all-tiny"], "give exactly one of TARGET"),
        (["check", "tiny:gpt2", "--json", "{tmp}/missing/report.json"], "--json {tmp}/missing/report.json: the folder"),
    ],
    ids=["hub-id", "empty-folder", "no-folder", "unknown-check", "unclaimed-tiny", "unclaimed-folder",
         "unknown-adapter", "no-target", "two-targets", "json-folder"],
)
def test_bad_input_is_one_line_and_exit_status_2(arguments, expected, tmp_path, monkeypatch, capsys, only_llama_and_gpt2) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    unclaimed = str(_saved_unclaimed_model(tmp_path / "neox")) if "{unclaimed}" in arguments else ""
    empty = tmp_path / "empty"
    empty.mkdir()
    arguments = [a.replace("{tmp}", str(empty)).replace("{unclaimed}", unclaimed) for a in arguments]

    code = main(arguments)

    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected.replace("{tmp}", str(empty)) in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_verbose_shows_the_traceback(capsys) -> None:
    code = main(["check", "tiny:no_such_type", "--verbose"])

    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback (most recent call last)" in captured.err
    assert "UnsupportedArchitectureError" in captured.err


def test_adapters_lists_each_type_with_what_its_variant_changes(capsys) -> None:
    """`nnrosetta adapters --json` gives every claimed type its merged capabilities, and refusals their reason."""
    from nnrosetta import Adapter, Registry, Variant, hookimpl
    from nnrosetta.cli import adapters as adapters_command

    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter(
                name="fam", model_types=("a", "b", "c"), rename={"model.layers": "layers"},
                variants={"b": Variant(notes="b differs"), "c": Variant(unsupported="c cannot be served: no layers")},
            ))

    registry = Registry(autoload=False)
    registry.register_plugin(Plugin(), name="fam-plugin")
    data = adapters_command.describe(registry)
    (family,) = data["adapters"]
    types = {entry["model_type"]: entry for entry in family["types"]}
    assert types["a"]["served"] and types["a"]["notes"] == ""
    assert types["b"]["notes"] == "b differs"
    assert not types["c"]["served"] and types["c"]["refused"] == "c cannot be served: no layers"
    lines = adapters_command._variant_lines(family)
    assert lines == {"b": "b differs", "c": "refused: c cannot be served: no layers"}


def test_adapters_reports_each_broken_plugin_on_one_line(tmp_path, capsys, monkeypatch) -> None:
    import argparse

    from plugin_fixtures import adapter_plugin, make_distribution

    from nnrosetta import Registry
    from nnrosetta.cli import adapters as adapters_command

    monkeypatch.setenv("COLUMNS", "80")
    make_distribution(tmp_path, "nnrosetta-good", "1.0", {"good": adapter_plugin("good", ("goodtype",))})
    make_distribution(tmp_path, "nnrosetta-faulty", "0.1", {"faulty": "import a_module_that_does_not_exist\n"})
    assert adapters_command.run(argparse.Namespace(json=False), Registry(search_path=[str(tmp_path)])) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "faulty" in line]
    assert len(lines) == 1 and lines[0].startswith("broken plugin: faulty (nnrosetta-faulty 0.1): import of entry")
    assert "ModuleNotFoundError" in lines[0]


def test_check_quick_leaves_out_the_costliest_checks(tmp_path, capsys) -> None:
    from nnrosetta_conformance.runner import QUICK_LEAVES_OUT

    report = tmp_path / "quick.json"
    assert main(["check", "tiny:llama", "--quick", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    ran = {result["name"] for entry in data.get("reports", [data]) for result in entry["results"]}
    assert ran and not ran & set(QUICK_LEAVES_OUT)
    assert {"fidelity", "residual_sum", "final_norm"} <= ran
