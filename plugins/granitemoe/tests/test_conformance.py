"""The conformance suite on every Granite MoE type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGraniteMoeConformance(ConformanceSuite):
    adapters = ("granitemoe",)
