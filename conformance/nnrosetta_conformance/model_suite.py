"""The suite ``pytest --nnrosetta-model TARGET`` runs; collected only through that option."""

from nnrosetta_conformance.pytest_plugin import ConformanceSuite


class TestNnrosettaModel(ConformanceSuite):
    """Every conformance check on each ``--nnrosetta-model`` target."""

    from_command_line = True
