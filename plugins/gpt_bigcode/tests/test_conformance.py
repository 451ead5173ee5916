"""The conformance suite on GPT-BigCode, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGPTBigCodeConformance(ConformanceSuite):
    adapters = ("gpt_bigcode",)
