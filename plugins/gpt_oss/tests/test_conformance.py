"""The conformance suite on gpt-oss, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestGptOssConformance(ConformanceSuite):
    adapters = ("gpt_oss",)
