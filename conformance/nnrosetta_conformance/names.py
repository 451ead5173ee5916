"""The names of the conformance checks an adapter may declare ``known_broken``, importable cheaply.

The core's registry reads this tuple through the ``nnrosetta.check_names`` entry
point to refuse a misspelt key at registration, without importing the suite (or
torch). Gate checks are left out: a model whose structure does not resolve can
never be waived into "conforms". A test keeps the tuple equal to the registered checks.
"""

WAIVABLE_CHECKS = (
    "accessor_shapes",
    "fidelity",
    "write_identity",
    "write_effect",
    "residual_chain",
    "residual_sum",
    "sublayer_locality",
    "final_norm",
    "final_projection",
    "sizes",
    "steering",
    "skip_layers",
    "padding_invariance",
    "gradients",
    "generation",
    "attention_probabilities",
    "heads",
    "attention_patterns",
    "moe_routing",
    "state_restored",
    "kinds_shapes",
    "kinds_writes",
    "kinds_residual",
    "kinds_locality",
    "kinds_generation",
)
