"""The conformance suite on every served seq2seq-decoder type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestBartConformance(ConformanceSuite):
    adapters = ("bart",)
