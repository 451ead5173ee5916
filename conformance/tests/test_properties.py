"""Property-based runs on a sample of distinct designs: the suite on hypothesis-drawn tiny configs.

The machinery lives in `nnrosetta_conformance.properties` (third-party adapters run it
with ``ConformanceSuite.property_examples``). ``NNROSETTA_HYPOTHESIS_EXAMPLES`` sets the
examples per type (default 3: hypothesis tries the smallest config first, then random ones).
"""

from __future__ import annotations

import os

import pytest

from nnrosetta_conformance.properties import check_drawn_configs
from nnrosetta_conformance.runner import tiny_targets

EXAMPLES = int(os.environ.get("NNROSETTA_HYPOTHESIS_EXAMPLES", "3"))
#: A sample of distinct designs (sequential, fused qkv, sandwich + soft-cap, MoE): the drawn runs
#: exercise the suite itself; every claimed type runs the suite on its own tiny config in its plugin.
PROPERTY_TYPES = ("llama", "gpt2", "gemma2", "mixtral")
TARGETS = [(adapter.name, model_type) for adapter, model_type in tiny_targets() if model_type in PROPERTY_TYPES]


def test_the_sample_covers_every_design() -> None:
    assert sorted(t for _, t in TARGETS) == sorted(PROPERTY_TYPES)


@pytest.mark.parametrize("adapter_name, model_type", TARGETS, ids=[f"{a}-{t}" for a, t in TARGETS])
def test_every_check_passes_on_drawn_tiny_configs(adapter_name: str, model_type: str) -> None:
    check_drawn_configs(adapter_name, model_type, EXAMPLES)
