"""The conformance suite on the deliberately broken adapter: its failures are the demonstration."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestExampleBrokenConformance(ConformanceSuite):
    adapters = ("example_broken",)
