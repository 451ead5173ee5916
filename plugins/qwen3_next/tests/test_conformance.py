"""The conformance suite on every served type of the qwen3_next plugin, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestQwen3NextConformance(ConformanceSuite):
    adapters = ("qwen3_next",)
