"""The conformance suite on every served type of the mamba plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestMambaConformance(ConformanceSuite):
    adapters = ("mamba",)
