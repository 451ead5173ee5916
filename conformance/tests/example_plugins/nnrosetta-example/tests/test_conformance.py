"""The whole conformance suite for this plugin: what a third party writes."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestExampleConformance(ConformanceSuite):
    adapters = ("example",)
    property_examples = 2          # also the suite on two hypothesis-drawn tiny configs
