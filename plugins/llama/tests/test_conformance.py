"""The conformance suite on every model type the llama adapter claims, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestLlamaConformance(ConformanceSuite):
    adapters = ("llama",)
