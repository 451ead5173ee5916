"""The conformance suite on GPT-J and CodeGen, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGPTJConformance(ConformanceSuite):
    adapters = ("gptj",)
