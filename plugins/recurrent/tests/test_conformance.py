"""The conformance suite on every served type of the recurrent plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestRecurrentConformance(ConformanceSuite):
    adapters = ("recurrent",)
