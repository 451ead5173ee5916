"""The conformance suite on GPT-NeoX and GPT-NeoX-Japanese, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGPTNeoXConformance(ConformanceSuite):
    adapters = ("gpt_neox",)
