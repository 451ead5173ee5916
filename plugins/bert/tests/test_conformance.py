"""The conformance suite on every BERT-family type and the ModernBERT decoder, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestBertConformance(ConformanceSuite):
    adapters = ("bert", "modernbert_decoder")
