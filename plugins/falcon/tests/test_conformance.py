"""The conformance suite on Falcon (the Falcon-7B multi-query layout), through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestFalconConformance(ConformanceSuite):
    adapters = ("falcon",)
