"""The conformance suite on every served type of the linear_hybrid plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestLinearHybridConformance(ConformanceSuite):
    adapters = ("linear_hybrid",)
