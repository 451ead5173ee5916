"""The conformance suite on every mixture-of-experts model type, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestMixtureOfExpertsConformance(ConformanceSuite):
    adapters = ("mixtral",)
