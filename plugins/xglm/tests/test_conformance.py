"""The conformance suite on XGLM and BioGPT, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestXglmConformance(ConformanceSuite):
    adapters = ("xglm",)
