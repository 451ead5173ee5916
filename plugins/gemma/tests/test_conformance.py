"""The conformance suite on every Gemma model type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGemmaConformance(ConformanceSuite):
    adapters = ("gemma",)
