"""The whole conformance suite for this plugin: what a third party writes."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestExampleConformance(ConformanceSuite):
    adapters = ("example",)
