"""The conformance suite on every served type of the lfm2 plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestLfm2Conformance(ConformanceSuite):
    adapters = ("lfm2",)
