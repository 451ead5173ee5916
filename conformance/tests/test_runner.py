"""The runner: statuses, capabilities vs known-broken, the gate, and checks catching real faults.

Faults are planted in real tiny models with ordinary torch hooks (no mocks): each
named check must fail on its fault, with a message that says what it saw.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import pytest
import torch

from nnrosetta import Adapter, Capability, StandardizedTransformer, default_registry
from nnrosetta_conformance import run
from nnrosetta_conformance.checks import CHECKS, Probe, check, current_probe, ordered_checks
from nnrosetta_conformance.runner import UnknownCheckError, select_checks, single_threaded
from nnrosetta_conformance.tiny import build_tiny


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with single_threaded():
        yield


@pytest.fixture
def temporary_checks() -> Iterator[list[str]]:
    """Names registered by a test; removed from the registry afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        CHECKS.pop(name, None)


def _tiny(model_type: str = "llama", adapter=None) -> StandardizedTransformer:
    model, tokenizer = build_tiny(model_type)
    return StandardizedTransformer(model, tokenizer=tokenizer, adapter=adapter, check=False)


def _llama(**changes) -> Adapter:
    return dataclasses.replace(default_registry().adapter("llama"), **changes)


def test_a_tiny_target_runs_every_check_in_order_and_reports_as_json() -> None:
    report = run("tiny:llama")

    assert [r.name for r in report.results] == [c.name for c in ordered_checks()]
    assert report.results[0].name == "structure" and report.results[-1].name == "state_restored"
    base = ("structure", "accessor_shapes", "fidelity", "write_identity", "write_effect", "residual_chain",
            "final_projection", "padding_invariance", "gradients", "generation", "state_restored")
    assert {name: report.result(name).status for name in base} == {name: "passed" for name in base}
    assert (report.target, report.model_type, report.adapter) == ("tiny:llama", "llama", "llama")
    assert report.plugin.startswith("nnrosetta-llama ")
    assert all(r.seconds >= 0 for r in report.results) and report.seconds >= sum(r.seconds for r in report.results)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["results"][2]["name"] == "fidelity" and data["results"][2]["status"] == "passed"
    assert data["ok"] == report.ok


def test_checks_see_the_probe_passed_and_a_loaded_model_runs_as_is(temporary_checks) -> None:
    seen: list[Probe] = []

    @check("test_records_probe")
    def records_probe(model) -> None:
        """Records the probe it is given."""
        seen.append(current_probe(model))

    temporary_checks.append("test_records_probe")
    probe = Probe.from_rows([[5, 6, 7], [8]], pad_token_id=3)
    model = _tiny("gpt2")
    report = run(model, ["test_records_probe", "fidelity", "padding_invariance"], probe=probe)

    assert report.statuses() == {"test_records_probe": "passed", "fidelity": "passed", "padding_invariance": "passed"}
    assert seen == [probe]
    assert probe.input_ids.tolist() == [[5, 6, 7], [3, 3, 8]]
    assert probe.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert probe.position_ids.tolist() == [[0, 1, 2], [0, 0, 0]]


def test_unknown_check_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownCheckError) as raised:
        select_checks(["fidelity", "fidelty"])
    message = str(raised.value)
    assert message.startswith("unknown conformance check(s): fidelty. Known checks: structure, accessor_shapes")
    assert "--checks fidelity,gradients" in message
    assert [c.name for c in select_checks(["state_restored", "structure"])] == ["structure", "state_restored"]


def test_a_known_broken_check_that_passes_is_reported_and_fails_the_run() -> None:
    report = run("tiny:llama", ["fidelity"], adapter=_llama(known_broken={"fidelity": "we thought so"}))

    result = report.result("fidelity")
    assert result.status == "xpassed" and not report.ok
    assert result.message == (
        "adapter 'llama' declares this check known broken (we thought so) but it passed; "
        "remove 'fidelity' from the adapter's known_broken."
    )


def test_a_known_broken_check_that_fails_is_an_expected_failure() -> None:
    def doubled(model, hidden):
        return 2 * model.lm_head(model.ln_final(hidden))

    adapter = _llama(final_projection=doubled, known_broken={"final_projection": "doubles the logits"})
    report = run("tiny:llama", ["final_projection", "fidelity"], adapter=adapter)

    assert report.statuses() == {"final_projection": "xfailed", "fidelity": "passed"}
    assert report.ok
    message = report.result("final_projection").message
    assert message.startswith("known broken (doubles the logits): project_on_vocab(layers_output[-1]) through "
                              "the adapter's final_projection (doubled) differs from the logits: max |Δ| = ")


def test_an_unclaimed_capability_skips_and_a_claimed_one_that_breaks_fails(temporary_checks) -> None:
    @check("test_needs_final_projection", requires=[Capability.FINAL_PROJECTION])
    def needs_final_projection(model) -> None:
        """Breaks whenever it runs."""
        raise RuntimeError("the projection exploded")

    temporary_checks.append("test_needs_final_projection")
    unclaimed = run(_tiny(), ["test_needs_final_projection"]).result("test_needs_final_projection")
    assert unclaimed.status == "skipped"
    assert unclaimed.message.startswith("adapter 'llama' does not claim capability final_projection; ")
    assert Capability.FINAL_PROJECTION.doc in unclaimed.message

    def plain(model, hidden):
        return model.lm_head(model.ln_final(hidden))

    claimed = run("tiny:llama", ["test_needs_final_projection"], adapter=_llama(final_projection=plain))
    result = claimed.result("test_needs_final_projection")
    assert result.status == "failed" and result.message == "raised RuntimeError: the projection exploded"


def test_a_failed_structure_check_stops_the_rest_with_a_reason() -> None:
    misnamed = Adapter(
        name="misnamed",
        model_types=("llama",),
        rename={"model.embed_tokens": "embed_tokens", "model.layers": "layers", "model.final_norm": "ln_final"},
    )
    report = run(_tiny(adapter=misnamed), ["structure", "fidelity", "state_restored"])

    assert report.statuses() == {"structure": "failed", "fidelity": "failed", "state_restored": "failed"}
    assert "leaves standard module(s) ln_final unresolved" in report.result("structure").message
    assert report.result("fidelity").message == (
        "not run: the `structure` check failed, so this one cannot run meaningfully"
    )


def test_state_restored_catches_changed_weights_and_a_left_over_hook(temporary_checks) -> None:
    @check("test_changes_a_weight")
    def changes_a_weight(model) -> None:
        """Adds one to the final norm's weight."""
        with torch.no_grad():
            model._module.model.norm.weight.add_(1.0)

    temporary_checks.append("test_changes_a_weight")
    report = run(_tiny(), ["test_changes_a_weight", "state_restored"])
    message = report.result("state_restored").message
    assert report.result("state_restored").status == "failed"
    assert message == "the suite changed weights or buffers: model.norm.weight."

    @check("test_leaves_a_hook")
    def leaves_a_hook(model) -> None:
        """Installs a forward hook on the last layer and never removes it."""
        model._module.model.layers[-1].register_forward_hook(lambda module, args, output: output * 1.5)

    temporary_checks.append("test_leaves_a_hook")
    report = run(_tiny(), ["test_leaves_a_hook", "state_restored"])
    assert report.result("state_restored").status == "failed"
    assert report.result("state_restored").message.startswith(
        "a plain run after the suite gives other logits than before it: max |Δ| = "
    )


def test_residual_chain_catches_a_change_between_layers() -> None:
    model = _tiny()
    model._module.model.layers[1].register_forward_pre_hook(lambda module, args: (args[0] * 2, *args[1:]))
    report = run(model, ["residual_chain", "fidelity"])

    assert report.statuses() == {"residual_chain": "failed", "fidelity": "passed"}
    assert report.result("residual_chain").message.startswith(
        "each layer's input should be the previous layer's output exactly: layers_input[1] vs layers_output[0]: "
        "max |Δ| = "
    )


def test_padding_invariance_catches_a_model_that_ignores_the_mask() -> None:
    model = _tiny()

    def ignore_mask(module, args, kwargs):
        return args, {**kwargs, "attention_mask": torch.ones_like(kwargs["attention_mask"])}

    model._module.register_forward_pre_hook(ignore_mask, with_kwargs=True)
    report = run(model, ["padding_invariance", "fidelity"])

    assert report.statuses() == {"padding_invariance": "failed", "fidelity": "passed"}
    message = report.result("padding_invariance").message
    assert "row 0 (11 padding tokens): max |Δ| = " in message and "row 1" not in message.split(":", 1)[1]


def test_gradients_catch_a_layer_that_cuts_the_graph() -> None:
    model = _tiny()
    model._module.model.layers[0].register_forward_hook(lambda module, args, output: output.detach())
    report = run(model, ["gradients", "state_restored"])

    assert report.result("gradients").status == "failed"
    assert "does not require grad" in report.result("gradients").message
    assert report.result("state_restored").status == "passed"  # requires_grad flags were put back


# -- speed: the quick profile, the shared plain trace, the short probe --------------------


def test_the_quick_profile_leaves_out_exactly_the_costly_checks_and_runs_the_rest() -> None:
    from nnrosetta_conformance.runner import QUICK_LEAVES_OUT

    report = run("tiny:llama", quick=True)

    assert [r.name for r in report.results] == [c.name for c in ordered_checks() if c.name not in QUICK_LEAVES_OUT]
    assert sorted(QUICK_LEAVES_OUT) == ["generation", "gradients", "sublayer_locality", "write_effect"]
    assert select_checks(["fidelity", "write_effect"], quick=True) == [CHECKS["fidelity"]]
    assert report.ok and report.result("state_restored").status == "passed"


def test_the_read_only_checks_share_one_plain_forward() -> None:
    model = _tiny()
    forwards: list[int] = []
    model._module.register_forward_pre_hook(lambda *_: forwards.append(1))
    read_only = ["accessor_shapes", "fidelity", "residual_chain", "final_projection", "residual_sum", "final_norm"]

    report = run(model, read_only)

    assert report.statuses() == {name: "passed" for name in read_only}
    # The recorded state's plain run, the shared plain trace, and fidelity's plain HuggingFace forward.
    assert len(forwards) == 3


def test_a_wrong_accessor_read_in_the_shared_trace_fails_only_the_checks_that_use_it() -> None:
    from nnrosetta import Span

    broken = _llama(spans={"mlp": Span("mlp.down_proj", "mlp.down_proj")})  # mlps_input is the MLP's inner width

    report = run("tiny:llama", ["accessor_shapes", "residual_chain", "final_projection"], adapter=broken)

    assert report.statuses() == {"accessor_shapes": "failed", "residual_chain": "passed", "final_projection": "passed"}
    assert "mlps_input[0] is (3, " in report.result("accessor_shapes").message


def test_the_short_probe_keeps_a_full_row_and_a_padded_row_ending_in_real_tokens() -> None:
    from nnrosetta_conformance.checks.core import short_probe

    probe = Probe.from_rows([[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15]], pad_token_id=3)

    short = short_probe(probe, width=3)

    assert short.input_ids.tolist() == [[7, 8, 9], [3, 10, 11]]
    assert short.attention_mask.tolist() == [[1, 1, 1], [0, 1, 1]]
