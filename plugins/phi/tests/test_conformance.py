"""The conformance suite on every Phi-family model type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestPhiConformance(ConformanceSuite):
    adapters = ("phi",)
