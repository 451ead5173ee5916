"""The conformance suite on every served type of the mamba_hybrid plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestMambaHybridConformance(ConformanceSuite):
    adapters = ("mamba_hybrid",)
