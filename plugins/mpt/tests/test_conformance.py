"""The conformance suite on MPT, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestMPTConformance(ConformanceSuite):
    adapters = ("mpt",)
