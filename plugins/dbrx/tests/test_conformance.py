"""The conformance suite on DBRX, through the pytest plugin."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestDBRXConformance(ConformanceSuite):
    adapters = ("dbrx",)
