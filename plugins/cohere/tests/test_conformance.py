"""The conformance suite on every Cohere model type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestCohereConformance(ConformanceSuite):
    adapters = ("cohere",)
