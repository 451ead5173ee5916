"""The conformance suite on GPT-2, through the pytest plugin (the path a third party walks)."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGPT2Conformance(ConformanceSuite):
    adapters = ("gpt2",)
