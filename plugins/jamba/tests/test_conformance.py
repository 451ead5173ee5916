"""The conformance suite on every served type of the jamba plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestJambaConformance(ConformanceSuite):
    adapters = ("jamba",)
