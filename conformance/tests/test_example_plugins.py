"""The worked third-party example plugins, installed through entry-point metadata.

``nnrosetta-example`` serves GPT-NeoX and passes every check it can; the deliberately
broken ``nnrosetta-example-broken`` fails exactly the checks its mistakes break, with
messages that name them. Both are run the way a third party runs them: in-process
through the library, and through their own three-line pytest files in a fresh
pytest process where only the pytest11 entry point brings the suite in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


from nnrosetta_conformance import run

EXAMPLES = Path(__file__).parent / "example_plugins"

BASE_CHECKS = (
    "structure",
    "accessor_shapes",
    "fidelity",
    "write_identity",
    "write_effect",
    "residual_chain",
    "final_projection",
    "padding_invariance",
    "gradients",
    "generation",
    "state_restored",
)
#: The meaning checks the broken adapter's `self_attn` (its fused qkv projection) must fail; the
#: per-kind shape check measures every layer's mixer output, which that projection is not.
MEANING_FAILURES = ("residual_sum", "sublayer_locality", "kinds_shapes")
#: What the broken adapter's mistakes must produce, and nothing else.
BROKEN_STATUSES = {
    **{name: "passed" for name in BASE_CHECKS},
    "accessor_shapes": "failed",
    "final_projection": "failed",
    "write_effect": "xfailed",
    "residual_chain": "xpassed",
}


def _only_unclaimed_capabilities_skipped(report) -> None:
    for result in report.results:
        if result.status == "skipped":
            allowed = ("does not claim capability", "declares no layer kinds")
            assert any(words in result.message for words in allowed), (result.name, result.message)


def test_example_adapter_passes_every_check(example_registry) -> None:
    report = run("tiny:gpt_neox", registry=example_registry)

    assert (report.model_type, report.adapter, report.plugin) == ("gpt_neox", "example", "nnrosetta-example 0.1.0")
    assert {name: report.result(name).status for name in BASE_CHECKS} == {name: "passed" for name in BASE_CHECKS}
    _only_unclaimed_capabilities_skipped(report)
    assert report.ok


def test_broken_adapter_fails_exactly_the_checks_it_breaks(example_registry) -> None:
    report = run("tiny:gpt_neox", adapter="example_broken", registry=example_registry)

    assert {name: report.result(name).status for name in BASE_CHECKS} == BROKEN_STATUSES
    # `self_attn` at the fused projection has no linear child to measure: `sizes` cannot apply.
    assert report.result("sizes").status == "skipped"
    assert not report.ok
    failed = [r.name for r in report.failures]
    # The wrong `self_attn` also breaks what the meaning checks tie to the attention.
    assert set(failed) == {"accessor_shapes", "residual_chain", "final_projection", *MEANING_FAILURES}, failed
    shapes = report.result("accessor_shapes").message
    assert "attentions_output[0] is (3, " in shapes and ", 96), expected (3, " in shapes and ", 32)" in shapes
    assert "'attention.query_key_value': 'self_attn'" in shapes
    projection = report.result("final_projection").message
    assert "final_projection (projection_without_final_norm)" in projection and "max |Δ| = " in projection
    assert "fix it" in projection
    stale = report.result("residual_chain").message
    assert "remove 'residual_chain' from the adapter's known_broken" in stale
    expected_failure = report.result("write_effect").message
    assert expected_failure.startswith("known broken (self_attn is the fused qkv projection")
    assert "RuntimeError" in expected_failure


def _junit_statuses(path: Path) -> dict[str, dict[str, str]]:
    """'example' / 'broken' -> check name -> outcome, from a JUnit XML report."""
    statuses: dict[str, dict[str, str]] = {}
    for case in ElementTree.parse(path).iter("testcase"):
        check = case.get("name").split("[", 1)[1].rstrip("]").removeprefix("gpt_neox-")
        children = {child.tag: child for child in case}
        if "failure" in children or "error" in children:
            status = "failed"
        elif "skipped" in children:
            status = "xfailed" if children["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            status = "passed"
        statuses.setdefault("broken" if "Broken" in case.get("classname") else "example", {})[check] = status
    return statuses


def test_third_party_test_files_run_the_suite_through_the_pytest_plugin(example_site: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(example_site), os.environ.get("PYTHONPATH")])),
        "NNROSETTA_PLUGINS": "example,example_broken",
    }
    junit = tmp_path / "junit.xml"
    files = [str(test) for test in sorted(EXAMPLES.glob("*/tests/test_conformance.py"))]
    # A fresh pytest with no project configuration: only the pytest11 entry point brings the suite in.
    options = ["-q", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "--import-mode=importlib"]
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *files, *options, f"--junitxml={junit}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    statuses = _junit_statuses(junit)
    assert {name: statuses["example"][name] for name in BASE_CHECKS} == {name: "passed" for name in BASE_CHECKS}
    # The example opts in to hypothesis-drawn configs (property_examples = 2); the broken one does not.
    assert statuses["example"]["drawn"] == "passed" and statuses["broken"]["off"] == "skipped"
    # In pytest an unexpected pass of a known-broken check fails its item.
    assert {name: statuses["broken"][name] for name in BASE_CHECKS} == {**BROKEN_STATUSES, "residual_chain": "failed"}
    assert "conformance check 'accessor_shapes' on tiny:gpt_neox (failed)" in completed.stdout
    assert "conformance check 'residual_chain' on tiny:gpt_neox (xpassed)" in completed.stdout
    failed = 3 + len(MEANING_FAILURES)
    assert f"{failed} failed" in completed.stdout and "1 xfailed" in completed.stdout


def test_pytest_nnrosetta_model_runs_the_suite_on_any_target(example_site: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(example_site), os.environ.get("PYTHONPATH")])),
        "NNROSETTA_PLUGINS": "example,example_broken",
    }
    options = ["-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "-v"]
    target = ["--nnrosetta-model", "tiny:gpt_neox", "--nnrosetta-adapter", "example_broken",
              "--nnrosetta-checks", "structure,accessor_shapes,final_projection"]
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *target],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    verdicts = [line.split("::", 2)[-1] for line in completed.stdout.splitlines() if "test_conformance[" in line
                and line.rstrip().endswith("%]")]
    assert [v.split(" [")[0].strip() for v in verdicts] == [
        "test_conformance[gpt_neox-structure] PASSED",
        "test_conformance[gpt_neox-accessor_shapes] FAILED",
        "test_conformance[gpt_neox-final_projection] FAILED",
    ]
