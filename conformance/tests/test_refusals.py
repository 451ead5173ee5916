"""A configuration the adapter refuses is a skip with its reason, never a failure and never hidden."""

from __future__ import annotations

import dataclasses

import pytest

from nnrosetta import RefusedConfigError, Registry, StandardizedTransformer, default_registry, hookimpl
from nnrosetta_conformance.report import SKIPPED
from nnrosetta_conformance.runner import run_all_tiny

REASON = "planted refusal: option x is not served; load with x=False"


def _refusing_registry() -> Registry:
    refusing = dataclasses.replace(default_registry().adapter("llama"), name="refusing", refuse=lambda config: REASON,
                                   model_types=("llama",), variants={}, plugin="")

    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register(refusing)

    registry = Registry(autoload=False)
    registry.register_plugin(Plugin(), name="refusing-plugin")
    return registry


def test_loading_a_refused_config_names_the_reason() -> None:
    registry = _refusing_registry()
    with pytest.raises(RefusedConfigError, match="adapter 'refusing'.*cannot serve this 'llama' model: planted refusal"):
        StandardizedTransformer("tiny:llama", registry=registry)


def test_a_refused_tiny_config_is_skipped_with_its_reason_in_the_suite() -> None:
    suite = run_all_tiny(registry=_refusing_registry(), checks=["fidelity", "sizes"])
    (report,) = suite.reports
    assert [(r.name, r.status) for r in report.results] == [("fidelity", SKIPPED), ("sizes", SKIPPED)]
    assert all(REASON in r.message for r in report.results)
