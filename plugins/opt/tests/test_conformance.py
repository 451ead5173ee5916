"""The conformance suite on OPT (the pre-norm OPT-125m layout), through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestOPTConformance(ConformanceSuite):
    adapters = ("opt",)
