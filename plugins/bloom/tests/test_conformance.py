"""The conformance suite on BLOOM, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestBloomConformance(ConformanceSuite):
    adapters = ("bloom",)
