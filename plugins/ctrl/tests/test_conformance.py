"""The conformance suite on CTRL, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestCTRLConformance(ConformanceSuite):
    adapters = ("ctrl",)
