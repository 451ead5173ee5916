"""The conformance suite on GPT-Neo, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGPTNeoConformance(ConformanceSuite):
    adapters = ("gpt_neo",)
