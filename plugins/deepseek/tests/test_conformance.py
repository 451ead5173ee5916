"""The conformance suite on every DeepSeek-style MoE type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestDeepSeekConformance(ConformanceSuite):
    adapters = ("deepseek",)
