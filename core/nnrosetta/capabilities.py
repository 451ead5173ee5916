"""The closed vocabulary of capabilities an adapter can claim.

Capabilities are derived from what an adapter declares (a spec present means
the capability is claimed), never set by hand, so a flag cannot drift from the
code that serves it. Conformance checks name the capabilities they require and
are skipped, with the reason, where an adapter does not claim one.
"""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    """One thing an adapter may or may not serve beyond the base interface."""

    ATTENTION_PROBABILITIES = "attention_probabilities"
    HEADS = "heads"
    MOE = "moe"
    FINAL_PROJECTION = "final_projection"

    @property
    def doc(self) -> str:
        return CAPABILITY_DOCS[self]


CAPABILITY_DOCS: dict[Capability, str] = {
    Capability.ATTENTION_PROBABILITIES: (
        "Post-softmax attention probabilities (batch, heads, q, k) can be read and "
        "written inside each layer's attention, at a point the adapter names in the "
        "family's attention forward. Claimed when the adapter declares `attention`."
    ),
    Capability.HEADS: (
        "Per-head queries, keys, values and head outputs are served. Claimed when the "
        "adapter declares `heads`."
    ),
    Capability.MOE: (
        "Mixture-of-experts routing: router logits, top-k choices, expert ablation. "
        "Claimed when the adapter declares `moe`."
    ),
    Capability.FINAL_PROJECTION: (
        "The family turns the final hidden state into logits with more than "
        "lm_head(ln_final(h)) (soft-capping, scaling); the adapter supplies it. "
        "Claimed when the adapter declares `final_projection`."
    ),
}
