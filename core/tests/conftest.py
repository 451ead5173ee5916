"""Fixtures shared by the core tests: tiny models of two families, built offline.

The generic guarantees are asserted once per claimed type by the conformance suite
(each plugin's ConformanceSuite); the core's own tests exercise the core on a
sequential (llama) and a fused-projection (gpt2) family, so they do not grow with
the number of installed types.
"""

from __future__ import annotations

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

#: The families the core's own tests run on.
CORE_TEST_TYPES = ("llama", "gpt2")

PROMPTS = ["The capital of France is", "Hi", "The cat sat on the mat and"]


@pytest.fixture(scope="session")
def prompts() -> list[str]:
    return list(PROMPTS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``model_type`` over the core's test families."""
    if "model_type" in metafunc.fixturenames:
        metafunc.parametrize("model_type", CORE_TEST_TYPES, scope="module")


@pytest.fixture(scope="module")
def tiny(model_type: str):
    """(hf_model, tokenizer) for ``model_type``: seeded random weights, float32, eval mode."""
    return build_tiny(model_type)


@pytest.fixture(scope="module")
def standardized(tiny) -> StandardizedTransformer:
    model, tokenizer = tiny
    return StandardizedTransformer(model, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def hf_reference_logits():
    """Plain HuggingFace logits for a left-padded batch, with the position ids nnsight passes."""

    def reference(hf_model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            return hf_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits

    return reference
