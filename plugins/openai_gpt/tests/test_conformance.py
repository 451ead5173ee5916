"""The conformance suite on the original GPT (openai-gpt), through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestOpenAIGPTConformance(ConformanceSuite):
    adapters = ("openai_gpt",)
