"""Plugin discovery through real entry-point metadata, conflicts, broken plugins, load control."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import nnrosetta
from nnrosetta import Adapter, AdapterConflictError, InvalidAdapterError, Variant, hookimpl
from nnrosetta.cli import main as cli_main
from nnrosetta.registry import CHECK_NAMES_GROUP, DISABLE_AUTOLOAD_ENV, ONLY_PLUGINS_ENV, Registry

from plugin_fixtures import adapter_plugin, make_distribution

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A folder on sys.path where throwaway distributions are 'installed'."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_discovers_plugins_through_installed_entry_point_metadata(site):
    make_distribution(site, "nnrosetta-toy", "1.2.3", {"toy": adapter_plugin("toy", ("toytype",))})
    registry = Registry(search_path=[str(site)])
    (adapter,) = registry.adapters()
    assert adapter.name == "toy"
    assert adapter.plugin == "nnrosetta-toy 1.2.3"
    assert registry.resolve("toytype") == adapter.for_type("toytype")
    assert registry.plugins["toy"].distribution == "nnrosetta-toy"


def test_the_project_plugins_are_found_from_their_distributions():
    registry = Registry()
    plugins = {a.name: a.plugin for a in registry.adapters()}
    assert plugins["llama"].startswith("nnrosetta-llama ")
    assert plugins["gpt2"].startswith("nnrosetta-gpt2 ")
    assert registry.resolve("gpt2").name == "gpt2"
    assert registry.resolve("qwen2").name == "llama"


def test_core_alone_has_no_adapters_and_a_pip_installed_plugin_adds_exactly_its_own(tmp_path):
    """A real `pip install --target` of core, then of the gpt2 plugin: discovery reads only metadata."""
    core_only = tmp_path / "core_only"
    with_gpt2 = tmp_path / "with_gpt2"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "--target", str(core_only), str(ROOT)], check=True)
    subprocess.run([*pip, "--target", str(with_gpt2), str(ROOT / "plugins" / "gpt2")], check=True)
    assert Registry(search_path=[str(core_only)]).adapters() == []
    registry = Registry(search_path=[str(core_only), str(with_gpt2)])
    assert [a.name for a in registry.adapters()] == ["gpt2"]
    assert registry.adapters()[0].plugin == "nnrosetta-gpt2 0.1.0"


def test_equal_claims_are_a_conflict_naming_both_plugins(site):
    make_distribution(site, "nnrosetta-first", "1.0", {"first": adapter_plugin("first", ("shared",))})
    make_distribution(site, "nnrosetta-second", "2.0", {"second": adapter_plugin("second", ("shared",))})
    registry = Registry(search_path=[str(site)])
    with pytest.raises(AdapterConflictError) as raised:
        registry.resolve("shared")
    message = str(raised.value)
    assert "nnrosetta-first 1.0" in message and "nnrosetta-second 2.0" in message
    assert "priority" in message and "adapter=" in message
    assert set(registry.conflicts()) == {"shared"}


def test_higher_priority_wins_a_shared_claim(site):
    make_distribution(site, "nnrosetta-base", "1.0", {"base": adapter_plugin("base", ("shared",))})
    make_distribution(site, "nnrosetta-better", "1.0", {"better": adapter_plugin("better", ("shared",), priority=5)})
    registry = Registry(search_path=[str(site)])
    assert registry.resolve("shared").name == "better"
    assert registry.conflicts() == {}
    assert registry.resolve("shared", adapter="base").name == "base"


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_keep_working(site):
    make_distribution(site, "nnrosetta-good", "1.0", {"good": adapter_plugin("good", ("goodtype",))})
    make_distribution(site, "nnrosetta-bad", "0.3", {"bad": "import a_module_that_does_not_exist\n"})
    registry = Registry(search_path=[str(site)])
    assert [a.name for a in registry.adapters()] == ["good"]
    (broken,) = registry.broken
    assert (broken.name, broken.distribution, broken.version) == ("bad", "nnrosetta-bad", "0.3")
    assert "ModuleNotFoundError" in broken.error and "a_module_that_does_not_exist" in broken.error


def test_a_plugin_whose_hook_raises_is_reported_and_the_others_keep_working(site):
    raising = """
from nnrosetta import hookimpl

@hookimpl
def register_adapters(register):
    raise RuntimeError("cannot read my own config")
"""
    make_distribution(site, "nnrosetta-good", "1.0", {"good": adapter_plugin("good", ("goodtype",))})
    make_distribution(site, "nnrosetta-raising", "1.0", {"raising": raising})
    registry = Registry(search_path=[str(site)])
    assert [a.name for a in registry.adapters()] == ["good"]
    assert "RuntimeError: cannot read my own config" in registry.broken[0].error
    assert "raising (nnrosetta-raising 1.0)" in registry.describe_installed()


def test_a_malformed_adapter_marks_its_plugin_broken_naming_plugin_and_field(site):
    malformed = """
from nnrosetta import Adapter, hookimpl

@hookimpl
def register_adapters(register):
    register(Adapter(name="oops", model_types=("x",), rename={"model.blocks": "blocks"}))
"""
    make_distribution(site, "nnrosetta-oops", "1.0", {"oops": malformed})
    registry = Registry(search_path=[str(site)])
    assert registry.adapters() == []
    error = registry.broken[0].error
    assert "nnrosetta-oops 1.0" in error and "`rename`" in error and "'blocks'" in error


def test_autoload_can_be_switched_off_by_environment(site, monkeypatch):
    make_distribution(site, "nnrosetta-toy", "1.0", {"toy": adapter_plugin("toy", ("toytype",))})
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    registry = Registry(search_path=[str(site)])
    assert registry.adapters() == []
    assert "autoloading is off" in registry.describe_installed()


def test_autoload_can_be_limited_to_named_plugins(site, monkeypatch):
    make_distribution(site, "nnrosetta-one", "1.0", {"one": adapter_plugin("one", ("t1",))})
    make_distribution(site, "nnrosetta-two", "1.0", {"two": adapter_plugin("two", ("t2",))})
    monkeypatch.setenv(ONLY_PLUGINS_ENV, "two")
    assert [a.name for a in Registry(search_path=[str(site)]).adapters()] == ["two"]


class RuntimePlugin:
    """A plugin object defined in a notebook: not packaged, registered at run time."""

    @hookimpl
    def register_adapters(self, register):
        register(Adapter(name="runtime", model_types=("runtimetype",), rename={"model.layers": "layers"}))


def test_run_time_registration(monkeypatch):
    registry = Registry(autoload=False)
    monkeypatch.setattr("nnrosetta.registry._default_registry", registry)
    info = nnrosetta.register_plugin(RuntimePlugin(), name="notebook")
    assert info.distribution == "<run-time>"
    assert registry.resolve("runtimetype").name == "runtime"
    with pytest.raises(AdapterConflictError, match="already registered"):
        nnrosetta.register_plugin(RuntimePlugin(), name="notebook")


def _only(layout: str):
    return lambda config: None if config.layout == layout else f"layout {config.layout!r}; this adapter serves {layout!r}"


class TwoLayouts:
    """Two adapters of one model type, each refusing the other's layout."""

    @hookimpl
    def register_adapters(self, register):
        register(Adapter(name="base", model_types=("layouts",), rename={"model.layers": "layers"}, refuse=_only("base")))
        register(Adapter(name="wide", model_types=("layouts",), rename={"model.layers": "layers"}, refuse=_only("wide"),
                         priority=-1))


def _layouts_registry() -> Registry:
    registry = Registry(autoload=False)
    registry.register_plugin(TwoLayouts(), name="layouts")
    return registry


def test_a_refused_config_goes_to_the_types_next_claimant_that_accepts_it():
    registry = _layouts_registry()
    assert registry.resolve("layouts").name == "base"
    assert registry.resolve("layouts", config=types.SimpleNamespace(layout="base")).name == "base"
    assert registry.resolve("layouts", config=types.SimpleNamespace(layout="wide")).name == "wide"
    # an explicit choice is kept, so its refusal reaches the user
    assert registry.resolve("layouts", adapter="base", config=types.SimpleNamespace(layout="wide")).name == "base"


def test_a_config_every_claimant_refuses_keeps_the_default_and_its_reason():
    other = types.SimpleNamespace(layout="other")
    chosen = _layouts_registry().resolve("layouts", config=other)
    assert chosen.name == "base"
    assert chosen.refusal(other) == "layout 'other'; this adapter serves 'base'"


def test_run_time_registration_of_a_malformed_adapter_raises_and_registers_nothing():
    class Broken:
        @hookimpl
        def register_adapters(self, register):
            register(Adapter(name="bad", model_types=("a",), variants={"b": Variant()}))

    registry = Registry(autoload=False)
    with pytest.raises(InvalidAdapterError, match="`variants`.*'b'"):
        registry.register_plugin(Broken(), name="broken")
    assert registry.adapters() == [] and registry.broken == [] and "broken" not in registry.plugins


@pytest.mark.parametrize(
    "fields, field_name",
    [
        ({"model_types": ()}, "model_types"),
        ({"model_types": ("a",), "rename": {"x": "not_a_standard_name"}}, "rename"),
        ({"model_types": ("a",), "variants": {"b": Variant()}}, "variants"),
        ({"model_types": ("a",), "final_projection": 3}, "final_projection"),
    ],
)
def test_adapter_validation_names_the_field(fields, field_name):
    with pytest.raises(InvalidAdapterError, match=f"plugin 'p', adapter 'x'(, model type 'a')?: field `{field_name}`"):
        Adapter(name="x", **fields).validate("p")


def test_adapter_declarations_are_immutable():
    adapter = Adapter(name="x", model_types=("a",), rename={"model.layers": "layers"})
    with pytest.raises(TypeError):
        adapter.rename["model.norm"] = "ln_final"
    with pytest.raises(AttributeError):
        adapter.name = "y"


def test_cli_adapters_lists_both_plugins(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert cli_main(["adapters", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {a["name"]: a for a in data["adapters"]}
    assert {"llama", "gpt2"} <= set(names)
    assert "qwen3" in names["llama"]["model_types"]
    distributions = {p["distribution"] for p in data["plugins"]}
    assert {"nnrosetta-llama", "nnrosetta-gpt2"} <= distributions
    assert cli_main(["adapters"]) == 0
    table = capsys.readouterr().out
    assert "nnrosetta-llama" in table and "nnrosetta-gpt2" in table


# -- faults a plugin author makes: each isolated, reported with what to do ---------------

HOOK_TEMPLATE = """
from nnrosetta import Adapter, hookimpl

ADAPTER = Adapter(name={name!r}, model_types=({name!r},), rename={{"model.layers": "layers"}})

{body}
"""


def _faulty(name: str, body: str, contract: str = "") -> str:
    return contract + HOOK_TEMPLATE.format(name=name, body=body)


FAULTS = {
    "wrong argument name": (
        "@hookimpl\ndef register_adapters(reg):\n    reg(ADAPTER)\n",
        "register_adapters(register)",
    ),
    "misspelt hook name": (
        "@hookimpl\ndef register_adapter(register):\n    register(ADAPTER)\n",
        "matches no nnrosetta hook specification; valid hook names: register_adapters",
    ),
    "missing hookimpl marker": (
        "def register_adapters(register):\n    register(ADAPTER)\n",
        "without the @nnrosetta.hookimpl marker",
    ),
    "object that is not an Adapter": (
        "@hookimpl\ndef register_adapters(register):\n    register({'name': 'x'})\n",
        "expected an nnrosetta.Adapter",
    ),
    "known_broken naming no check": (
        "import dataclasses\n@hookimpl\ndef register_adapters(register):\n"
        "    register(dataclasses.replace(ADAPTER, known_broken={'fidelty': 'typo'}))\n",
        "names 'fidelty', which is no conformance check",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_faulty_plugin_is_isolated_and_reported_with_what_to_do(site, fault, tmp_path_factory):
    body, words = FAULTS[fault]
    make_distribution(site, "nnrosetta-good", "1.0", {"good": adapter_plugin("good", ("goodtype",))})
    make_distribution(site, "nnrosetta-faulty", "0.1", {"faulty": _faulty("faulty", body)})
    registry = Registry(search_path=[str(site), *_suite_path(tmp_path_factory)])
    assert [a.name for a in registry.adapters()] == ["good"]
    (broken,) = registry.broken
    assert (broken.name, broken.distribution) == ("faulty", "nnrosetta-faulty")
    assert words in broken.error, broken.error
    assert "faulty" in registry.describe_installed()


def _suite_path(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A folder holding only the installed suite's check-names entry point, so known_broken keys are
    validated and no other installed plugin is discovered (wherever the ``nnrosetta`` metadata lives)."""
    import importlib.metadata

    (names,) = [ep for ep in importlib.metadata.distribution("nnrosetta").entry_points if ep.group == CHECK_NAMES_GROUP]
    root = tmp_path_factory.mktemp("suite-names")
    info = root / "nnrosetta_suite_names-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnrosetta-suite-names\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{CHECK_NAMES_GROUP}]\n{names.name} = {names.value}\n")
    return [str(root)]


@pytest.mark.parametrize(
    "contract, words",
    [
        ("NNROSETTA_CONTRACT = None\n", "declares no contract version"),
        ("NNROSETTA_CONTRACT = 1\n", "written for adapter contract 1, but this nnrosetta implements contract 2"),
    ],
)
def test_a_plugin_for_another_contract_is_reported_broken(site, contract, words):
    body = "@hookimpl\ndef register_adapters(register):\n    register(ADAPTER)\n"
    make_distribution(site, "nnrosetta-old", "0.1", {"old": _faulty("old", body, contract)})
    registry = Registry(search_path=[str(site)])
    assert registry.adapters() == []
    assert words in registry.broken[0].error


def test_a_plugin_requiring_another_core_release_is_reported_broken(site):
    make_distribution(
        site, "nnrosetta-future", "0.1", {"future": adapter_plugin("future", ("f",))}, requires=("nnrosetta>=9,<10",)
    )
    registry = Registry(search_path=[str(site)])
    assert registry.adapters() == []
    assert "requires nnrosetta<10,>=9" in registry.broken[0].error or "requires nnrosetta>=9,<10" in registry.broken[0].error


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_one_adapter_name_in_two_plugins_serves_neither_whatever_the_order(site, order):
    for label in order:
        make_distribution(site, f"nnrosetta-{label}", "1.0", {label: adapter_plugin("same", (f"type_{label}",))})
    registry = Registry(search_path=[str(site)])
    assert registry.adapters() == []
    with pytest.raises(AdapterConflictError) as raised:
        registry.adapter("same")
    assert "nnrosetta-a 1.0" in str(raised.value) and "nnrosetta-b 1.0" in str(raised.value)
    assert "neither is served" in str(raised.value)


def test_a_mistyped_plugin_limit_says_which_names_matched_nothing(site, monkeypatch):
    make_distribution(site, "nnrosetta-good", "1.0", {"good": adapter_plugin("good", ("goodtype",))})
    monkeypatch.setenv(ONLY_PLUGINS_ENV, "good,llamma")
    registry = Registry(search_path=[str(site)])
    assert [a.name for a in registry.adapters()] == ["good"]
    assert "NNROSETTA_PLUGINS names llamma, which match no installed plugin (installed: good)" in registry.describe_installed()
